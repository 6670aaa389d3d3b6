//! The admin listener's routes (docs/admin.md): the JSON API and `GET /metrics`. Each handler
//! acts through the server-wide state, which owns the decisions: a kick through the session
//! registry, a lift through the policy and the login guard, a reload through the same path as
//! SIGHUP.

use super::Admin;
use crate::server::metrics::classic_text;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// The OpenMetrics media type, which Prometheus asks for.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format, for everyone else.
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus does), else the
/// classic text format (curl, `promtool check metrics`).
pub(super) async fn metrics(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    let text = admin.shared.metrics_text();
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    if openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
    } else {
        ([(header::CONTENT_TYPE, CLASSIC)], classic_text(&text)).into_response()
    }
}

/// `GET /api/sessions`: every open session and its running transfer.
pub(super) async fn sessions(State(admin): State<Arc<Admin>>) -> Response {
    Json(json!({ "sessions": admin.shared.live.snapshot() })).into_response()
}

/// `DELETE /api/sessions/{id}`: kick a session (421, its transfer aborted, an upload
/// discarded).
pub(super) async fn kick(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "a session id is a number");
    };
    if !admin.shared.live.kick(id) {
        return error(StatusCode::NOT_FOUND, &format!("no open session {id}"));
    }
    tracing::warn!(target: "fxpd::security", event = "session_kicked", session = id, "session kicked by the operator");
    admin.shared.metrics.session_kicked();
    Json(json!({ "kicked": id })).into_response()
}

/// `GET /api/bans`: addresses banned for refused data connections and addresses locked out
/// after failed logins, each with the seconds left.
pub(super) async fn bans(State(admin): State<Arc<Admin>>) -> Response {
    let list = |entries: Vec<(IpAddr, std::time::Duration)>| {
        entries
            .into_iter()
            .map(|(ip, left)| json!({ "address": ip.to_string(), "seconds_left": left.as_secs() }))
            .collect::<Vec<_>>()
    };
    Json(json!({
        "bans": list(admin.shared.policy.bans()),
        "lockouts": list(admin.shared.lockouts()),
    }))
    .into_response()
}

/// `DELETE /api/bans/{addr}`: lift the ban and the lockout of an address.
pub(super) async fn lift(State(admin): State<Arc<Admin>>, Path(addr): Path<String>) -> Response {
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return error(StatusCode::BAD_REQUEST, "not an IP address");
    };
    let lifted = admin.shared.lift(ip).await;
    if !lifted.ban && !lifted.lockout {
        return error(
            StatusCode::NOT_FOUND,
            &format!("{ip} is neither banned nor locked out"),
        );
    }
    Json(json!({ "address": crate::policy::normalize(ip).to_string(), "ban": lifted.ban, "lockout": lifted.lockout }))
        .into_response()
}

/// `POST /api/reload`: the same reload as SIGHUP; answers what changed, or why it was refused.
pub(super) async fn reload(State(admin): State<Arc<Admin>>) -> Response {
    match admin.shared.reload_from(&admin.reread).await {
        Ok(report) => Json(json!({
            "reloaded": true,
            "changed": report.changed,
            "needs_restart": report.needs_restart,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "reloaded": false, "error": e })),
        )
            .into_response(),
    }
}

/// Any other path.
pub(super) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route (see docs/admin.md)")
}

fn error(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}
