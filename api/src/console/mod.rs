//! The console: server-rendered screens under `/console` for the people who run wraps
//! (platform operators, a distributor's head office and advisers, managers), served by
//! `wrapd` itself with every asset embedded: no CDN, no script.
//!
//! Invariants this module enforces (tested by `api/tests/http/console.rs`):
//! * a screen runs only for a live session ([`tenants::sessions::resolve`]); anything else is
//!   sent to the sign-in page;
//! * the signed-in user acts as its [`tenants::Principal`] ([`tenants::users::User::principal`])
//!   and every screen calls the same domain functions as the API with it, so the console
//!   never shows what the tenant's operator API client could not; another tenant's id answers
//!   404 exactly like an id that does not exist;
//! * on top of that, each screen names the user roles that may open it (403 otherwise);
//! * every POST carries the session's CSRF token ([`tenants::sessions::csrf_token`]; the
//!   sign-in form a double-submit token of its own) and is refused with 403, changing nothing,
//!   without it;
//! * sign-in, a refused sign-in, a lockout and sign-out are written to the audit log under the
//!   user's name (`user:<email>`);
//! * the session cookie is HttpOnly, SameSite=Strict, scoped to `/console`, and Secure when
//!   `console.secure_cookie` is set (behind TLS).

mod format;
mod pages;
mod texts;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use futures::future::LocalBoxFuture;
use tenants::Principal;
use tenants::sessions::{self, SessionCookie, SignedIn};
use tenants::users::UserRole;

use crate::middleware::RequestId;
use crate::problem::Problem;
use crate::server::AppState;

pub use texts::Texts;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "wrap_session";
/// The language cookie's name (`ja` or `en`).
pub const LANG_COOKIE: &str = "wrap_lang";
/// The sign-in form's double-submit CSRF cookie (there is no session yet to derive one from).
pub const SIGN_IN_CSRF_COOKIE: &str = "wrap_sign_in";

/// The console's style sheet, embedded.
const CSS: &str = include_str!("../../assets/console.css");

/// A strict policy: no script at all, styles and images from this server only, forms post
/// only here, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| {
        web::resource(path).default_service(web::to(crate::problem::method_not_allowed))
    };
    cfg.service(resource("/console").get(pages::root))
        .service(resource("/console/").get(pages::root))
        .service(resource("/console/console.css").get(css))
        .service(
            resource("/console/sign-in")
                .get(pages::sign_in_form)
                .post(pages::sign_in),
        )
        .service(resource("/console/sign-out").post(pages::sign_out))
        .service(resource("/console/home").get(pages::home))
        .service(resource("/console/eod").get(pages::eod))
        .service(resource("/console/audit").get(pages::audit))
        .service(resource("/console/book").get(pages::book))
        .service(resource("/console/customers").get(pages::customers))
        .service(resource("/console/follow-up").get(pages::follow_up))
        .service(resource("/console/customers/{id}").get(pages::customer));
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Self::Ja => &texts::JA,
            Self::En => &texts::EN,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// `?lang=` first (and then remembered in a cookie), then the cookie, then Japanese: the
    /// platform's users are Japanese distributors first.
    pub fn of(req: &HttpRequest) -> (Self, bool) {
        let asked = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .ok()
            .and_then(|q| {
                q.iter()
                    .find(|(k, _)| k == "lang")
                    .and_then(|(_, v)| Self::parse(v))
            });
        if let Some(lang) = asked {
            return (lang, true);
        }
        let remembered = cookie(req, LANG_COOKIE).and_then(|v| Self::parse(&v));
        (remembered.unwrap_or(Self::Ja), false)
    }
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value for the console: HttpOnly, SameSite=Strict, Path=/console, Secure
/// when configured; `max_age` in seconds (0 deletes it).
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: u64) -> String {
    let secure = if state.console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// What every page's frame shows.
#[derive(Debug)]
pub struct Frame {
    pub t: &'static Texts,
    pub lang: &'static str,
    /// `?lang=` of the other language, on this same page.
    pub other_lang_href: String,
    pub title: String,
    /// Empty on the sign-in page.
    pub user_name: String,
    pub tenant_name: String,
    pub role_label: String,
    pub csrf: String,
    pub is_operator: bool,
    pub is_head_office: bool,
    /// Head office or an adviser: the customer screens (an adviser's scoped to their branch).
    pub sees_customers: bool,
}

impl Frame {
    /// The frame of a page with nobody signed in.
    pub fn anonymous(req: &HttpRequest, lang: Lang, title: &str) -> Self {
        Self {
            t: lang.texts(),
            lang: lang.code(),
            other_lang_href: other_lang_href(req, lang),
            title: title.to_owned(),
            user_name: String::new(),
            tenant_name: String::new(),
            role_label: String::new(),
            csrf: String::new(),
            is_operator: false,
            is_head_office: false,
            sees_customers: false,
        }
    }
}

fn other_lang_href(req: &HttpRequest, lang: Lang) -> String {
    format!("{}?lang={}", req.path(), lang.other().code())
}

/// The label of a role in `t`'s language.
pub fn role_label(t: &Texts, role: UserRole) -> &'static str {
    match role {
        UserRole::Operator => t.role_operator,
        UserRole::HeadOffice => t.role_head_office,
        UserRole::Adviser => t.role_adviser,
        UserRole::Manager => t.role_manager,
    }
}

/// A signed-in user, as every screen takes it.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub signed_in: SignedIn,
    pub cookie: SessionCookie,
    /// Who the domain functions see: the same rules as the tenant's API clients.
    pub principal: Principal,
    pub lang: Lang,
    /// Whether `?lang=` asked for a language (then remembered in a cookie).
    pub lang_asked: bool,
    pub request_id: String,
}

impl ConsoleUser {
    /// The frame of a page titled `title`.
    pub fn frame(&self, req: &HttpRequest, title: &str) -> Frame {
        let t = self.lang.texts();
        let user = &self.signed_in.user;
        let mut role = role_label(t, user.role).to_owned();
        if user.access == tenants::users::Access::Read {
            role = format!("{role} ({})", t.read_only);
        }
        Frame {
            t,
            lang: self.lang.code(),
            other_lang_href: other_lang_href(req, self.lang),
            title: title.to_owned(),
            user_name: user.name.clone(),
            tenant_name: self.signed_in.tenant_display_name.clone(),
            role_label: role,
            csrf: sessions::csrf_token(&self.cookie),
            is_operator: user.role == UserRole::Operator,
            is_head_office: user.role == UserRole::HeadOffice,
            sees_customers: matches!(user.role, UserRole::HeadOffice | UserRole::Adviser),
        }
    }

    /// 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[UserRole]) -> Result<(), ConsoleError> {
        if roles.contains(&self.signed_in.user.role) {
            Ok(())
        } else {
            Err(ConsoleError::page(StatusCode::FORBIDDEN, self.lang))
        }
    }

    /// `page` rendered in the user's language, answered 200 (the language remembered when
    /// `?lang=` asked for it).
    pub fn page(
        &self,
        state: &AppState,
        page: &impl Template,
    ) -> Result<HttpResponse, ConsoleError> {
        Ok(html(
            state,
            StatusCode::OK,
            render(page, self.lang)?,
            self.lang,
            self.lang_asked,
        ))
    }

    /// The audit log's name for this user.
    pub fn actor(&self) -> String {
        self.signed_in.user.actor()
    }
}

impl FromRequest for ConsoleUser {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (lang, lang_asked) = Lang::of(&req);
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ConsoleError::internal(lang, &"application state missing"))?;
            let Some(value) = cookie(&req, SESSION_COOKIE) else {
                return Err(ConsoleError::SignIn);
            };
            let cookie = SessionCookie::new(value);
            let now = chrono::Utc::now();
            let signed_in = sessions::resolve(&state.db, &cookie, state.console.policy(), now)
                .await
                .map_err(|e| ConsoleError::from_problem(lang, Problem::from(e)))?
                .ok_or(ConsoleError::SignIn)?;
            let principal = signed_in.user.principal(signed_in.tenant_kind);
            let span = tracing::Span::current();
            span.record("tenant_id", tracing::field::display(principal.tenant_id));
            span.record("client_id", tracing::field::display(&principal.client_id));
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            Ok(ConsoleUser {
                signed_in,
                cookie,
                principal,
                lang,
                lang_asked,
                request_id,
            })
        })
    }
}

/// An HTML answer with the console's headers; remembers `?lang=` when it was asked.
pub fn html(
    state: &AppState,
    status: StatusCode,
    body: String,
    lang: Lang,
    lang_asked: bool,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("content-security-policy", CSP));
    if lang_asked {
        res.append_header((
            SET_COOKIE,
            set_cookie(state, LANG_COOKIE, lang.code(), 365 * 24 * 3600),
        ));
    }
    res.body(body)
}

/// Renders `template`, or a 500 page.
pub fn render(template: &impl Template, lang: Lang) -> Result<String, ConsoleError> {
    template
        .render()
        .map_err(|e| ConsoleError::internal(lang, &e))
}

/// A 303 to `location` (after a POST, and for pages that moved).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location.to_owned()))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    frame: Frame,
    message: String,
}

/// Why a screen did not render.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: to the sign-in page.
    SignIn,
    /// An error page with this status and message.
    Page {
        status: StatusCode,
        lang: Lang,
        message: String,
    },
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn => f.write_str("not signed in"),
            Self::Page {
                status, message, ..
            } => write!(f, "{status}: {message}"),
        }
    }
}

impl ConsoleError {
    /// The page of `status` with its usual message (404, 403).
    pub fn page(status: StatusCode, lang: Lang) -> Self {
        let t = lang.texts();
        let message = match status {
            StatusCode::NOT_FOUND => t.not_found.to_owned(),
            StatusCode::FORBIDDEN => t.forbidden.to_owned(),
            other => other.canonical_reason().unwrap_or("Error").to_owned(),
        };
        Self::Page {
            status,
            lang,
            message,
        }
    }

    /// A 500 page; the cause goes to the log only.
    pub fn internal(lang: Lang, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "console page failed");
        Self::page(StatusCode::INTERNAL_SERVER_ERROR, lang)
    }

    /// The page of a domain refusal: its status, and its detail below 500 (a 5xx says nothing
    /// internal, as the API's problems do).
    pub fn from_problem(lang: Lang, problem: Problem) -> Self {
        let status = problem.status_code();
        match status {
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => Self::page(status, lang),
            s if s.is_server_error() => Self::page(s, lang),
            s => Self::Page {
                status: s,
                lang,
                message: problem.detail.unwrap_or(problem.title),
            },
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn => see_other("/console/sign-in"),
            Self::Page {
                status,
                lang,
                message,
            } => {
                let t = lang.texts();
                let page = ErrorPage {
                    frame: Frame {
                        t,
                        lang: lang.code(),
                        other_lang_href: format!("/console/home?lang={}", lang.other().code()),
                        title: t.error_title.to_owned(),
                        user_name: String::new(),
                        tenant_name: String::new(),
                        role_label: String::new(),
                        csrf: String::new(),
                        is_operator: false,
                        is_head_office: false,
                        sees_customers: false,
                    },
                    message: message.clone(),
                };
                let body = page
                    .render()
                    .unwrap_or_else(|_| format!("<!DOCTYPE html><title>{status}</title>"));
                HttpResponse::build(*status)
                    .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
                    .insert_header((CACHE_CONTROL, "no-store"))
                    .insert_header(("content-security-policy", CSP))
                    .body(body)
            }
        }
    }
}

/// The fields of a form POST (`application/x-www-form-urlencoded`), read within the body limit.
pub async fn form(
    req: &HttpRequest,
    payload: &mut web::Payload,
    lang: Lang,
) -> Result<Vec<(String, String)>, ConsoleError> {
    let body = crate::extract::read_body(req, payload)
        .await
        .map_err(|p| ConsoleError::from_problem(lang, p))?;
    serde_urlencoded::from_bytes(&body)
        .map_err(|_| ConsoleError::page(StatusCode::BAD_REQUEST, lang))
}

/// The first value of field `name` of a form.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// 403 unless the form carries the CSRF token of `user`'s session.
pub fn check_csrf(user: &ConsoleUser, form: &[(String, String)]) -> Result<(), ConsoleError> {
    match field(form, "csrf") {
        Some(token) if sessions::csrf_matches(&user.cookie, token) => Ok(()),
        _ => {
            tracing::warn!(user = %user.actor(), "console form refused: CSRF token missing or wrong");
            Err(ConsoleError::page(StatusCode::FORBIDDEN, user.lang))
        }
    }
}
