//! Joining a server that is not there says so, in the lobby, in words a person can act on.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/unreachable/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::driver::{Launched, testid};
use videoroom_desktop_tests::{free_port, wait_for, work_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_explained_in_the_lobby() {
    let started = Instant::now();
    let work = work_dir("unreachable");
    let app = Launched::start(&work, true).await;
    // A port nobody listens on (it was free a moment ago): the connection is refused.
    let url = format!("ws://127.0.0.1:{}/ws", free_port());
    let outcome = async {
        let s = &app.session;
        s.wait_lobby(Duration::from_secs(60)).await?;
        s.type_into(&testid("server-url"), &url).await?;
        s.type_into(&testid("room-name"), "e2e").await?;
        s.type_into(&testid("display-name"), "Ada").await?;
        s.click(&testid("join")).await?;
        let error = s
            .wait_css(&testid("lobby-error"), Duration::from_secs(30))
            .await?;
        let text = error.text().await.map_err(|e| e.to_string())?;
        let kind = error.attr("data-kind").await.map_err(|e| e.to_string())?;
        eprintln!("lobby error ({kind:?}): {text:?}");
        if kind.as_deref() != Some("unreachable") {
            return Err(format!(
                "the lobby error is of kind {kind:?}, not unreachable: {text:?}"
            ));
        }
        let lower = text.to_lowercase();
        if !(lower.contains("can't reach") || lower.contains("cannot reach"))
            || text.matches(url.as_str()).count() != 1
        {
            return Err(format!(
                "the lobby error should say once that it can't reach {url}: {text:?}"
            ));
        }
        // Still in the lobby, ready to try again.
        let join = s.wait_css(&testid("join"), Duration::from_secs(5)).await?;
        wait_for(
            Duration::from_secs(5),
            "the join button is enabled again",
            async || match join.is_enabled().await {
                Ok(true) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await?;
        if s.client
            .find(fantoccini::Locator::Css(&testid("room")))
            .await
            .is_ok()
        {
            return Err("a room is shown after a failed join".into());
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = outcome {
        panic!("{e}\n\n{}", app.failure_context(&work).await);
    }
    app.stop().await;
    eprintln!("passed in {:.1?}", started.elapsed());
}
