//! Who is calling, and what they may do.
//!
//! A [`Principal`] comes from a verified token ([`crate::jwt::KeySet::verify`]); the API must
//! also check that the tenant is still active and the client not revoked
//! ([`crate::store::principal_is_live`]) before it trusts one. Every operation names one
//! [`Action`] and calls [`Principal::authorize`] before touching data.
//!
//! The rules:
//! * only the platform manages tenants, reads the trial balance and the audit log;
//! * clients and console users are managed by an admin of their own tenant, or by a platform
//!   admin (a console user's principal is never an admin: `crate::users`);
//! * a viewer never writes; operators and admins write their own tenant's data;
//! * reads are scoped by tenant in the store, so any role may read its own tenant's data.
//!
//! `authorize` answers "may this kind of caller do this"; "does this object belong to the
//! caller" is the store's tenant scoping, and answers 404 (see [`Principal::can_see_tenant`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::client::Role;
use crate::tenant::TenantKind;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub tenant_id: Uuid,
    pub tenant_kind: TenantKind,
    /// The public client id (`cli_…`), the token's `sub`.
    pub client_id: String,
    pub role: Role,
}

/// What an operation does, for permission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List or read any tenant.
    ReadTenants,
    /// Create, suspend or resume tenants.
    ManageTenants,
    /// List the clients of a tenant.
    ReadClients { tenant_id: Uuid },
    /// Create, revoke or rotate the clients of a tenant.
    ManageClients { tenant_id: Uuid },
    /// List, create, suspend or resume the console users (people) of a tenant.
    ManageUsers { tenant_id: Uuid },
    /// Read the caller's own ledger accounts and entries.
    ReadLedger,
    /// Read the whole platform's trial balance.
    ReadTrialBalance,
    /// Read the audit log of every tenant.
    ReadAudit,
    /// Read the caller's own tenant data (customers, wraps, strategies, reports).
    ReadOwnData,
    /// Change the caller's own tenant data.
    WriteOwnData,
    /// Register instruments, upload prices and custodian statements (platform writers).
    ManageMarketData,
    /// Publish and change the caller's own strategies and their model versions (manager writers).
    ManageStrategies,
    /// Propose agreements and new terms to managers (distributor writers).
    ProposeAgreements,
    /// Accept or decline agreements proposed for the caller's strategies (manager writers).
    DecideAgreements,
    /// Set the platform's monthly fee per distributor (platform admins).
    SetPlatformFees,
    /// Open and change customers and wraps, and move their money (distributor writers).
    ManageCustomers,
    /// Read the reconciliation of the virtual layer with the omnibus (platform: all;
    /// distributor: its own book).
    ReadReconciliation,
    /// Report fills of the caller's own instructions, from its account system (distributor
    /// writers).
    ReportFills,
}

/// Why an action was refused. The API answers 403 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forbidden: {reason}")]
pub struct Forbidden {
    pub action: Action,
    pub reason: &'static str,
}

impl Principal {
    pub fn is_platform(&self) -> bool {
        self.tenant_kind == TenantKind::Platform
    }

    /// Whether objects of `tenant_id` are visible to this caller at all: its own tenant's, and
    /// every tenant's for the platform. Anything else must answer "not found".
    pub fn can_see_tenant(&self, tenant_id: Uuid) -> bool {
        self.is_platform() || self.tenant_id == tenant_id
    }

    /// `Ok(())` if this caller may perform `action`.
    pub fn authorize(&self, action: Action) -> Result<(), Forbidden> {
        let deny = |reason| Err(Forbidden { action, reason });
        let writer = matches!(self.role, Role::Admin | Role::Operator);
        match action {
            Action::ReadTenants | Action::ReadTrialBalance | Action::ReadAudit => {
                if self.is_platform() {
                    Ok(())
                } else {
                    deny("only the platform may do this")
                }
            }
            Action::ManageTenants => {
                if !self.is_platform() {
                    deny("only the platform may manage tenants")
                } else if self.role != Role::Admin {
                    deny("managing tenants needs the admin role")
                } else {
                    Ok(())
                }
            }
            Action::ReadClients { tenant_id } => {
                if !self.can_see_tenant(tenant_id) {
                    deny("clients of another tenant")
                } else if self.role != Role::Admin {
                    deny("reading clients needs the admin role")
                } else {
                    Ok(())
                }
            }
            Action::ManageClients { tenant_id } => {
                if !self.can_see_tenant(tenant_id) {
                    deny("clients of another tenant")
                } else if self.role != Role::Admin {
                    deny("managing clients needs the admin role")
                } else {
                    Ok(())
                }
            }
            Action::ManageUsers { tenant_id } => {
                if !self.can_see_tenant(tenant_id) {
                    deny("users of another tenant")
                } else if self.role != Role::Admin {
                    deny("managing users needs the admin role")
                } else {
                    Ok(())
                }
            }
            Action::ReadLedger | Action::ReadOwnData => Ok(()),
            Action::ManageMarketData => self.kind_writes(action, TenantKind::Platform),
            Action::ManageStrategies | Action::DecideAgreements => {
                self.kind_writes(action, TenantKind::Manager)
            }
            Action::ProposeAgreements | Action::ManageCustomers | Action::ReportFills => {
                self.kind_writes(action, TenantKind::Distributor)
            }
            Action::SetPlatformFees => {
                if !self.is_platform() {
                    deny("only the platform sets platform fees")
                } else if self.role != Role::Admin {
                    deny("setting platform fees needs the admin role")
                } else {
                    Ok(())
                }
            }
            Action::ReadReconciliation => match self.tenant_kind {
                TenantKind::Platform | TenantKind::Distributor => Ok(()),
                TenantKind::Manager => deny("a manager holds no customer money to reconcile"),
            },
            Action::WriteOwnData => {
                if writer {
                    Ok(())
                } else {
                    deny("a viewer cannot write")
                }
            }
        }
    }
}

impl Principal {
    /// A write that only a tenant of `kind` makes, and only with a writing role.
    fn kind_writes(&self, action: Action, kind: TenantKind) -> Result<(), Forbidden> {
        if self.tenant_kind != kind {
            let reason = match kind {
                TenantKind::Platform => "only the platform may do this",
                TenantKind::Distributor => "only a distributor may do this",
                TenantKind::Manager => "only a manager may do this",
            };
            return Err(Forbidden { action, reason });
        }
        if self.role == Role::Viewer {
            return Err(Forbidden {
                action,
                reason: "a viewer cannot write",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: TenantKind, role: Role) -> Principal {
        Principal {
            tenant_id: Uuid::now_v7(),
            tenant_kind: kind,
            client_id: "cli_x".into(),
            role,
        }
    }

    const KINDS: [TenantKind; 3] = [
        TenantKind::Platform,
        TenantKind::Distributor,
        TenantKind::Manager,
    ];
    const ROLES: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    #[test]
    fn only_platform_admin_manages_tenants() {
        for k in KINDS {
            for r in ROLES {
                let ok = p(k, r).authorize(Action::ManageTenants).is_ok();
                assert_eq!(
                    ok,
                    k == TenantKind::Platform && r == Role::Admin,
                    "{k:?} {r:?}"
                );
            }
        }
    }

    #[test]
    fn only_platform_reads_trial_balance_tenants_and_audit() {
        for action in [
            Action::ReadTrialBalance,
            Action::ReadTenants,
            Action::ReadAudit,
        ] {
            for k in KINDS {
                for r in ROLES {
                    let ok = p(k, r).authorize(action).is_ok();
                    assert_eq!(ok, k == TenantKind::Platform, "{action:?} {k:?} {r:?}");
                }
            }
        }
    }

    #[test]
    fn viewers_never_write() {
        for k in KINDS {
            let v = p(k, Role::Viewer);
            assert!(v.authorize(Action::WriteOwnData).is_err());
            assert!(v.authorize(Action::ManageTenants).is_err());
            assert!(
                v.authorize(Action::ManageClients {
                    tenant_id: v.tenant_id
                })
                .is_err()
            );
            assert!(v.authorize(Action::ReadLedger).is_ok());
            assert!(v.authorize(Action::ReadOwnData).is_ok());
            assert!(p(k, Role::Operator).authorize(Action::WriteOwnData).is_ok());
            assert!(p(k, Role::Admin).authorize(Action::WriteOwnData).is_ok());
        }
    }

    #[test]
    fn tenant_admins_manage_their_own_clients_only() {
        let admin = p(TenantKind::Distributor, Role::Admin);
        let own = Action::ManageClients {
            tenant_id: admin.tenant_id,
        };
        let other = Action::ManageClients {
            tenant_id: Uuid::now_v7(),
        };
        assert!(admin.authorize(own).is_ok());
        assert!(admin.authorize(other).is_err());
        assert!(
            p(TenantKind::Distributor, Role::Operator)
                .authorize(Action::ManageClients {
                    tenant_id: admin.tenant_id
                })
                .is_err()
        );
        // The platform admin manages any tenant's clients.
        let platform = p(TenantKind::Platform, Role::Admin);
        assert!(platform.authorize(other).is_ok());
        assert!(platform.can_see_tenant(Uuid::now_v7()));
        assert!(!admin.can_see_tenant(Uuid::now_v7()));
        assert!(admin.can_see_tenant(admin.tenant_id));
    }

    #[test]
    fn each_kind_writes_only_its_own_resources() {
        let cases = [
            (Action::ManageMarketData, TenantKind::Platform),
            (Action::ManageStrategies, TenantKind::Manager),
            (Action::DecideAgreements, TenantKind::Manager),
            (Action::ProposeAgreements, TenantKind::Distributor),
            (Action::ManageCustomers, TenantKind::Distributor),
        ];
        for (action, owner) in cases {
            for k in KINDS {
                for r in ROLES {
                    let ok = p(k, r).authorize(action).is_ok();
                    assert_eq!(
                        ok,
                        k == owner && r != Role::Viewer,
                        "{action:?} {k:?} {r:?}"
                    );
                }
            }
        }
        for k in KINDS {
            for r in ROLES {
                let ok = p(k, r).authorize(Action::SetPlatformFees).is_ok();
                assert_eq!(ok, k == TenantKind::Platform && r == Role::Admin);
                let ok = p(k, r).authorize(Action::ReadReconciliation).is_ok();
                assert_eq!(ok, k != TenantKind::Manager);
            }
        }
    }
}
