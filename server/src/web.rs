//! The web app (`--web-root`: the built `ui/`), served next to `/ws`.
//!
//! - `/` and every file under the root (`/assets/…`, `/favicon.svg`), by `tower-http`'s
//!   `ServeDir`: no `..`, no directory listings, content types from the extension.
//! - `/r/ROOM` (an invite link's path): the app's `index.html`, which reads the room from the
//!   path and a token from the fragment (never sent to the server).
//! - Vite names every asset by its content hash, so `/assets/…` are cached for a year; everything
//!   else (`index.html`) is revalidated on each load so a new release is picked up at once.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::path::{Path, PathBuf};
use tower_http::services::{ServeDir, ServeFile};

/// A web root the server cannot serve.
#[derive(Debug, thiserror::Error)]
#[error(
    "--web-root {}: no index.html there (build the UI with `npm run build` in ui/, \
     or point --web-root at its dist/ directory)",
    .0.display()
)]
pub struct MissingIndex(pub PathBuf);

/// Checks that `root` holds a built web app.
pub fn check_root(root: &Path) -> Result<(), MissingIndex> {
    if root.join("index.html").is_file() {
        Ok(())
    } else {
        Err(MissingIndex(root.to_path_buf()))
    }
}

/// `app` with the web app under `root` added: files at `/`, `index.html` at `/r/*`.
pub fn routes<S: Clone + Send + Sync + 'static>(app: Router<S>, root: &Path) -> Router<S> {
    let index = ServeFile::new(root.join("index.html"));
    app.route_service("/r/{*room}", index.clone())
        .route_service("/r/", index.clone())
        .route_service("/r", index)
        .fallback_service(ServeDir::new(root))
        .layer(middleware::from_fn(cache_control))
}

async fn cache_control(request: Request, next: Next) -> Response {
    let immutable = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    if response.status().is_success() && !response.headers().contains_key(header::CACHE_CONTROL) {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}
