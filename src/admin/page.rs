//! The status page at `/`: one server-rendered HTML page (no script, no external asset; it
//! reloads itself every 5 seconds) with the sessions and their transfers, the refusals by
//! rule, and the bans and lockouts.
//!
//! A browser cannot send the bearer token, so the page has a login form: the token posted
//! to `/login` is checked like a bearer token and answered with a cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` over HTTPS) that holds a hash of the token, not the token.
//! The cookie opens this page only: the API and `/metrics` still need the bearer token, so a
//! page in another tab can make the browser act on nothing.

use super::{Admin, Peer};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::sync::Arc;

/// The cookie's name.
const COOKIE: &str = "fxpd_admin";

/// The cookie that opens the page for the holder of `token`: a hash of it, so the cookie
/// cannot be used as a bearer token.
pub(super) fn cookie_value(token: &str) -> String {
    let digest = Sha256::digest(format!("fxpd admin page\n{token}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /`: the page for a valid cookie, else the login form.
pub(super) async fn page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    let expected = cookie_value(admin.token.secret());
    let given = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_owned))
        .next();
    match given {
        Some(value) if super::token::same(&value, &expected) => html(StatusCode::OK, &status(&admin)),
        _ => html(StatusCode::OK, &login_form(None)),
    }
}

/// `POST /login`: a form with `token`; a right one gets the cookie and goes to `/`.
pub(super) async fn login(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    body: String,
) -> Response {
    let given = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(form_decode)
        .unwrap_or_default();
    if !admin.token.matches(given.trim()) {
        tracing::warn!(
            target: "fxpd::security",
            event = "admin_unauthorized",
            client = %peer,
            method = "POST",
            path = "/login",
            reason = "wrong token",
            "admin request refused: wrong token"
        );
        return html(StatusCode::UNAUTHORIZED, &login_form(Some("Wrong token.")));
    }
    let secure = if admin.https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}",
        cookie_value(admin.token.secret())
    );
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `application/x-www-form-urlencoded` value: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTML answer with the page's security headers.
fn html(status: StatusCode, body: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        body.to_owned(),
    )
        .into_response()
}

/// Text made safe for HTML content and attribute values: every name and path comes from a
/// client.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}progress{width:12em}";

fn login_form(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p><b>{}</b></p>", esc(p)))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>fxpd</title><style>{STYLE}</style></head>\
<body><h1>fxpd</h1>{problem}<form method=\"post\" action=\"/login\"><label>Admin token \
<input type=\"password\" name=\"token\" autocomplete=\"off\" autofocus></label> \
<button type=\"submit\">Log in</button></form></body></html>"
    )
}

/// The status page.
fn status(admin: &Admin) -> String {
    let shared = &admin.shared;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
<title>fxpd status</title><style>{STYLE}</style></head><body><h1>fxpd {}</h1>",
        env!("CARGO_PKG_VERSION")
    );
    let sessions = shared.live.snapshot();
    let _ = write!(out, "<h2>Sessions ({})</h2>", sessions.len());
    out.push_str(
        "<table id=\"sessions\"><tr><th>id</th><th>client</th><th>user</th><th>since</th><th>directory</th>\
<th>TLS</th><th>transfer</th></tr>",
    );
    for s in &sessions {
        let transfer = match &s.transfer {
            None => "-".to_owned(),
            Some(t) => {
                let bar = match t.size {
                    Some(size) if size > 0 => format!(
                        " <progress value=\"{}\" max=\"{size}\">{}%</progress>",
                        t.bytes.min(size),
                        t.bytes.min(size) * 100 / size
                    ),
                    _ => String::new(),
                };
                format!(
                    "{} {} {} bytes at {} B/s{bar}",
                    t.direction.as_str(),
                    esc(&t.file),
                    t.bytes,
                    t.rate_bytes_per_sec
                )
            }
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{transfer}</td></tr>",
            s.id,
            esc(&s.client),
            esc(s.user.as_deref().unwrap_or("-")),
            esc(&s.since),
            esc(s.cwd.as_deref().unwrap_or("-")),
            if s.tls { "yes" } else { "no" },
        );
    }
    out.push_str("</table><h2>Data connections refused, by rule</h2><table id=\"refusals\"><tr><th>rule</th><th>refused</th></tr>");
    let stats = shared.policy.stats();
    for (reason, n) in &stats.refused {
        let _ = write!(out, "<tr><td>{}</td><td>{n}</td></tr>", reason.token());
    }
    out.push_str("</table><h2>Bans and lockouts</h2><table id=\"bans\"><tr><th>address</th><th>what</th><th>seconds left</th></tr>");
    let bans = shared.policy.bans().into_iter().map(|b| (b, "banned"));
    let lockouts = shared.lockouts().into_iter().map(|l| (l, "locked out"));
    for ((ip, left), what) in bans.chain(lockouts) {
        let _ = write!(
            out,
            "<tr><td>{ip}</td><td>{what}</td><td>{}</td></tr>",
            left.as_secs()
        );
    }
    out.push_str("</table></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_cannot_become_markup() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("a\nb"), "a\u{fffd}b");
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(form_decode("ab%2Fcd+e"), "ab/cd e");
        assert_eq!(form_decode("%zz%"), "%zz%");
        assert_eq!(form_decode("abc%4"), "abc%4");
    }

    #[test]
    fn the_cookie_is_not_the_token() {
        let token = "0123456789abcdef0123456789abcdef";
        assert_ne!(cookie_value(token), token);
        assert_eq!(cookie_value(token), cookie_value(token));
        assert_ne!(
            cookie_value(token),
            cookie_value("0123456789abcdef0123456789abcdeF")
        );
    }
}
