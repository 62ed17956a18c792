//! The web admin UI: HTML shells and the static files they load, all compiled into the binary.
//!
//! Each page is a server-rendered shell (title, heading, navigation with `aria-current`) that
//! loads one ES module; the module calls `/api/v1` and fills the page with DOM calls. Nothing
//! here reads a file, a session or the state: the shells are the same for everybody, and every
//! decision about who may see what is made by the API the scripts call. No asset is fetched
//! from anywhere else (see the CSP in `http/mod.rs`).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// One page of the UI.
struct Page {
    path: &'static str,
    /// The module `/ui/pages/<id>.js` that fills it.
    id: &'static str,
    title: &'static str,
    /// Shown in the navigation of a signed-in admin.
    in_nav: bool,
}

const PAGES: [Page; 12] = [
    Page {
        path: "/",
        id: "home",
        title: "nos",
        in_nav: false,
    },
    Page {
        path: "/setup",
        id: "setup",
        title: "First-run setup",
        in_nav: false,
    },
    Page {
        path: "/login",
        id: "login",
        title: "Sign in",
        in_nav: false,
    },
    Page {
        path: "/dashboard",
        id: "dashboard",
        title: "Dashboard",
        in_nav: true,
    },
    Page {
        path: "/pool",
        id: "pool",
        title: "Pools",
        in_nav: true,
    },
    Page {
        path: "/alerts",
        id: "alerts",
        title: "Alerts",
        in_nav: true,
    },
    Page {
        path: "/storage",
        id: "storage",
        title: "Storage wizard",
        in_nav: true,
    },
    Page {
        path: "/plugins",
        id: "plugins",
        title: "Plugins",
        in_nav: true,
    },
    Page {
        path: "/allowlist",
        id: "allowlist",
        title: "Allowlist",
        in_nav: true,
    },
    Page {
        path: "/audit",
        id: "audit",
        title: "Audit log",
        in_nav: true,
    },
    Page {
        path: "/sessions",
        id: "sessions",
        title: "Sessions",
        in_nav: true,
    },
    Page {
        path: "/security",
        id: "security",
        title: "Security",
        in_nav: true,
    },
];

/// A static file: URL path, media type, contents.
type Asset = (&'static str, &'static str, &'static [u8]);

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: [Asset; 18] = [
    (
        "/ui/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../ui/app.css"),
    ),
    (
        "/ui/favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../ui/favicon.svg"),
    ),
    ("/ui/main.js", JS, include_bytes!("../../../ui/main.js")),
    ("/ui/api.js", JS, include_bytes!("../../../ui/api.js")),
    ("/ui/dom.js", JS, include_bytes!("../../../ui/dom.js")),
    (
        "/ui/components.js",
        JS,
        include_bytes!("../../../ui/components.js"),
    ),
    (
        "/ui/pages/home.js",
        JS,
        include_bytes!("../../../ui/pages/home.js"),
    ),
    (
        "/ui/pages/setup.js",
        JS,
        include_bytes!("../../../ui/pages/setup.js"),
    ),
    (
        "/ui/pages/login.js",
        JS,
        include_bytes!("../../../ui/pages/login.js"),
    ),
    (
        "/ui/pages/dashboard.js",
        JS,
        include_bytes!("../../../ui/pages/dashboard.js"),
    ),
    (
        "/ui/pages/pool.js",
        JS,
        include_bytes!("../../../ui/pages/pool.js"),
    ),
    (
        "/ui/pages/alerts.js",
        JS,
        include_bytes!("../../../ui/pages/alerts.js"),
    ),
    (
        "/ui/pages/storage.js",
        JS,
        include_bytes!("../../../ui/pages/storage.js"),
    ),
    (
        "/ui/pages/plugins.js",
        JS,
        include_bytes!("../../../ui/pages/plugins.js"),
    ),
    (
        "/ui/pages/allowlist.js",
        JS,
        include_bytes!("../../../ui/pages/allowlist.js"),
    ),
    (
        "/ui/pages/audit.js",
        JS,
        include_bytes!("../../../ui/pages/audit.js"),
    ),
    (
        "/ui/pages/sessions.js",
        JS,
        include_bytes!("../../../ui/pages/sessions.js"),
    ),
    (
        "/ui/pages/security.js",
        JS,
        include_bytes!("../../../ui/pages/security.js"),
    ),
];

const SHELL: &str = include_str!("../../../ui/shell.html");

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for page in &PAGES {
        let html = shell(page);
        router = router.route(
            page.path,
            get(move || async move { respond("text/html; charset=utf-8", html.into_bytes()) }),
        );
    }
    for (path, media_type, bytes) in ASSETS {
        router = router.route(
            path,
            get(move || async move { respond(media_type, bytes.to_vec()) }),
        );
    }
    router
}

fn respond(media_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    response
}

/// The page's shell: every substituted value is a constant of this module, never user input.
fn shell(page: &Page) -> String {
    let nav: String = PAGES
        .iter()
        .filter(|other| other.in_nav)
        .map(|other| {
            let current = if other.id == page.id {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!(
                "<li><a href=\"{}\"{current}>{}</a></li>",
                other.path, other.title
            )
        })
        .collect();
    SHELL
        .replace("{{title}}", page.title)
        .replace("{{page}}", page.id)
        .replace("{{nav_hidden}}", if page.in_nav { "" } else { " hidden" })
        .replace("{{nav}}", &nav)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_module_is_an_asset() {
        for page in &PAGES {
            let module = format!("/ui/pages/{}.js", page.id);
            assert!(
                ASSETS.iter().any(|(path, _, _)| *path == module),
                "{module} missing from ASSETS"
            );
        }
    }

    #[test]
    fn shells_have_no_inline_script_or_style() {
        for page in &PAGES {
            let html = shell(page);
            assert!(!html.contains("{{"), "{}: unreplaced placeholder", page.id);
            assert!(!html.contains("<style"), "{}", page.id);
            assert!(!html.contains("style="), "{}", page.id);
            for script in html.split("<script").skip(1) {
                let tag_end = script.find('>').unwrap_or(script.len());
                assert!(
                    script[..tag_end].contains("src="),
                    "{}: inline script",
                    page.id
                );
            }
        }
    }
}
