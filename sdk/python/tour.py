"""The marketplace tour (deploy/tour/marketplace.sh) with the generated Python client.

Against a running wrapd: the platform registers an instrument and its price, a manager
publishes a strategy and its model, a distributor's agreement with it is accepted, the
distributor opens a customer, receives cash, opens a wrap and contributes to it (with an
Idempotency-Key, retried), then reads the wrap and the reconciliation back and checks the
amounts. Exits non-zero on the first answer that is not the expected one.

Usage: sdk/.venv/bin/python sdk/python/tour.py CLIENT_ID CLIENT_SECRET  (the platform admin's,
from `wrapd bootstrap`), with BASE (default http://127.0.0.1:8080). sdk/generate.sh installs
the client (`wrap_client`) into sdk/.venv.
"""

import os
import sys
import uuid
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from wrap_client import AuthenticatedClient, Client
from wrap_client.api.agreements import accept_agreement, propose_agreement
from wrap_client.api.auth import issue_token
from wrap_client.api.customers import create_customer, deposit, get_customer
from wrap_client.api.ledger import reconciliation
from wrap_client.api.market_data import create_instrument, upload_prices
from wrap_client.api.platform import create_tenant
from wrap_client.api.strategies import create_strategy, create_version
from wrap_client.api.tenants import create_client
from wrap_client.api.wraps import contribute, get_wrap, open_wrap
from wrap_client.models import (
    BillingPeriod,
    CashMovement,
    Contribution,
    CreateClient,
    CreateCustomer,
    CreateInstrument,
    CreateTenant,
    DriftBandKind,
    Goal,
    InstrumentKind,
    ModelWeight,
    NewStrategy,
    NewVersion,
    OpenWrap,
    PriceInput,
    PriceUpload,
    Problem,
    ProposeAgreement,
    RebalanceCalendar,
    Role,
    Split,
    TenantKind,
    TermsInput,
    Tier,
    TieredFee,
    TieredFeeKind,
    TokenRequest,
    WrapStatus,
)
from wrap_client.types import Response

BASE = os.environ.get("BASE", "http://127.0.0.1:8080")


def show(response: httpx.Response) -> None:
    """Prints each answer's status with its request (an httpx event hook)."""
    print(f"{response.status_code} {response.request.method} {response.request.url.path}")


HOOKS = {"event_hooks": {"response": [show]}}


T = TypeVar("T")


def ok(answer: Response[T | Problem], status: HTTPStatus) -> T:
    """The parsed answer, after checking its status (the problem it answered otherwise)."""
    parsed = answer.parsed
    if answer.status_code != status or parsed is None or isinstance(parsed, Problem):
        sys.exit(f"tour.py: expected {status.value}, got {answer.status_code}: {answer.content!r}")
    return parsed


def same(what: str, got: Any, want: Any) -> None:
    if got != want:
        sys.exit(f"tour.py: {what} is {got!r}, expected {want!r}")


def token(client_id: str, secret: str) -> AuthenticatedClient:
    """A client of the API with the access token of these client credentials."""
    form = TokenRequest(grant_type="client_credentials", client_id=client_id, client_secret=secret)
    with Client(base_url=BASE, httpx_args=HOOKS) as anonymous:
        answer = ok(issue_token.sync_detailed(client=anonymous, body=form), HTTPStatus.OK)
    same("token_type", answer.token_type, "Bearer")
    return AuthenticatedClient(base_url=BASE, token=answer.access_token, httpx_args=HOOKS)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run = uuid.uuid4().hex[:8]
    platform = token(sys.argv[1], sys.argv[2])

    # Tenants: a manager and a distributor, each with an admin client.
    def tenant(kind: TenantKind, name: str) -> tuple[str, AuthenticatedClient]:
        body = CreateTenant(kind=kind, name=f"{name} {run}", contact_email="ops@example.jp")
        created = ok(create_tenant.sync_detailed(client=platform, body=body), HTTPStatus.CREATED)
        admin = CreateClient(name="admin", role=Role.ADMIN)
        creds = ok(create_client.sync_detailed(created.id, client=platform, body=admin), HTTPStatus.CREATED)
        return created.id, token(creds.client_id, creds.client_secret)

    manager_id, manager = tenant(TenantKind.MANAGER, "Sakura Asset Management (Python)")
    _, bank = tenant(TenantKind.DISTRIBUTOR, "Minato Regional Bank (Python)")

    # The platform: an instrument and today's price (today in Tokyo, the business date).
    today = datetime.now(timezone(timedelta(hours=9))).date()
    fund = f"JP90PY{run.upper()}"
    instrument = CreateInstrument(
        code=fund,
        name="Global Balanced Fund",
        kind=InstrumentKind.INVESTMENT_TRUST,
        currency="JPY",
        unit_scale=0,
        quote_unit=10000,
        min_order_amount="100",
        settlement_days=2,
    )
    ok(create_instrument.sync_detailed(client=platform, body=instrument), HTTPStatus.CREATED)
    prices = PriceUpload(prices=[PriceInput(instrument=fund, date=today.isoformat(), price="12345")])
    counts = ok(upload_prices.sync_detailed(client=platform, body=prices), HTTPStatus.OK)
    same("prices inserted", counts.inserted, 1)

    # The manager: a strategy and its model.
    strategy = NewStrategy(
        code="BAL",
        name="Balanced",
        base_currency="JPY",
        risk_level=3,
        expected_return_annual="0.045",
        volatility_annual="0.11",
        drift_band_kind=DriftBandKind.ABSOLUTE,
        drift_band="0.05",
        rebalance_calendar=RebalanceCalendar.QUARTERLY,
        cooldown_days=20,
        min_initial_investment="100000",
    )
    strategy_id = ok(create_strategy.sync_detailed(client=manager, body=strategy), HTTPStatus.CREATED).id
    model = NewVersion(effective_date=today, cash_weight="0.02", weights=[ModelWeight(instrument=fund, weight="0.98")])
    ok(create_version.sync_detailed(strategy_id, client=manager, body=model), HTTPStatus.CREATED)

    # The distributor proposes an agreement (tiered fee, split 50/40/10); the manager accepts.
    terms = TermsInput(
        effective_date=today,
        management_fee=TieredFee(
            kind=TieredFeeKind.TIERED,
            tiers=[Tier(up_to="30000000", rate_annual="0.011"), Tier(up_to=None, rate_annual="0.009")],
        ),
        split=Split(channel="0.5", manager="0.4", platform="0.1"),
        billing_period=BillingPeriod.QUARTERLY,
    )
    proposal = ProposeAgreement(manager_tenant_id=manager_id, strategy_id=strategy_id, terms=terms)
    agreement_id = ok(propose_agreement.sync_detailed(client=bank, body=proposal), HTTPStatus.CREATED).id
    accepted = ok(accept_agreement.sync_detailed(agreement_id, client=manager), HTTPStatus.OK)
    same("agreement status", accepted.status.value, "active")

    # A customer, cash from the bank's settlement (a retry with the same key is the same entry).
    customer = CreateCustomer(
        external_ref="C-0001", name="Hanako Yamada", date_of_birth=datetime(1980, 4, 1).date(), risk_tolerance=3
    )
    customer_id = ok(create_customer.sync_detailed(client=bank, body=customer), HTTPStatus.CREATED).id
    cash = CashMovement(amount="1000000", reference="SETTLE-0001")
    key = f"dep-{run}"
    first = ok(deposit.sync_detailed(customer_id, client=bank, body=cash, idempotency_key=key), HTTPStatus.CREATED)
    again = ok(deposit.sync_detailed(customer_id, client=bank, body=cash, idempotency_key=key), HTTPStatus.CREATED)
    same("replayed deposit's entry", again.entry_id, first.entry_id)
    same("cash after the deposit", first.cash.available, "1000000")

    # A wrap with a goal, and a contribution to it (retried with its key: moved once).
    goal = Goal(name="Retire at 65", target_amount="20000000", target_date=datetime(2045, 4, 1).date())
    wrap = ok(
        open_wrap.sync_detailed(
            customer_id, client=bank, body=OpenWrap(agreement_id=agreement_id, name="Retirement", goal=goal)
        ),
        HTTPStatus.CREATED,
    )
    key = f"con-{run}"
    paid_in = Contribution(amount="600000")
    first = ok(contribute.sync_detailed(wrap.id, client=bank, body=paid_in, idempotency_key=key), HTTPStatus.CREATED)
    again = ok(contribute.sync_detailed(wrap.id, client=bank, body=paid_in, idempotency_key=key), HTTPStatus.CREATED)
    same("replayed contribution's entry", again.entry_id, first.entry_id)
    same("wrap status", first.wrap_status, WrapStatus.ACTIVE)
    same("wrap cash", first.wrap_cash, "600000")
    same("customer cash available", first.customer_cash_available, "400000")

    # Read back: the wrap, the customer and the distributor's reconciliation.
    view = ok(get_wrap.sync_detailed(wrap.id, client=bank), HTTPStatus.OK)
    same("wrap goal", view.wrap.goal.target_amount, "20000000")
    same("wrap cash", view.valuation.cash, "600000")
    same("wrap value", view.valuation.value, "600000")
    same("available to withdraw", view.available_to_withdraw, "600000")
    held = ok(get_customer.sync_detailed(customer_id, client=bank), HTTPStatus.OK)
    same("customer cash", [(c.currency, c.available) for c in held.cash], [("JPY", "400000")])
    books = ok(reconciliation.sync_detailed(client=bank), HTTPStatus.OK)
    same("reconciled", books.reconciled, True)
    [jpy] = [line for line in books.assets if line.asset == "JPY"]
    got = (jpy.customers, jpy.wraps, jpy.virtual_total, jpy.omnibus, jpy.difference)
    same(
        "JPY (customers, wraps, virtual total, omnibus, difference)",
        got,
        ("400000", "600000", "1000000", "1000000", "0"),
    )
    everyone = ok(reconciliation.sync_detailed(client=platform), HTTPStatus.OK)
    same("platform reconciled", everyone.reconciled, True)
    print("tour.py: the marketplace tour passed")


if __name__ == "__main__":
    main()
