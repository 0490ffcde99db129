//! A server with a self-signed certificate: the app refuses to join it silently, shows the
//! certificate's SHA-256 fingerprint in the lobby (the one the server printed), and after the
//! person trusts it joins and remembers it for that server only.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/trust-certificate/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::driver::{Launched, testid};
use videoroom_desktop_tests::{wait_for, work_dir};
use videoroom_server::Config;
use videoroom_server::config::TlsSetting;
use videoroom_testkit::{start_server, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_server_is_joined_once_its_fingerprint_is_trusted() {
    let started = Instant::now();
    let work = work_dir("trust-certificate");
    let server = start_server(Config {
        tls: TlsSetting::SelfSigned,
        ..test_config()
    })
    .await;
    let fingerprint = server.tls_fingerprint().expect("HTTPS");
    let url = format!("wss://localhost:{}/ws", server.local_addr().port());
    let app = Launched::start(&work, true).await;

    let outcome = async {
        let s = &app.session;
        s.wait_lobby(Duration::from_secs(60)).await?;
        s.type_into(&testid("server-url"), &url).await?;
        s.type_into(&testid("room-name"), "tofu").await?;
        s.type_into(&testid("display-name"), "Ada").await?;
        s.click(&testid("join")).await?;
        s.wait_attr(
            &testid("lobby-error"),
            "data-kind",
            "untrusted_certificate",
            Duration::from_secs(30),
        )
        .await?;
        let shown = wait_for(
            Duration::from_secs(10),
            "the lobby shows the certificate's fingerprint",
            async || {
                let el = s
                    .wait_css(&testid("certificate-fingerprint"), Duration::from_secs(1))
                    .await?;
                el.text().await.map_err(|e| e.to_string())
            },
        )
        .await?;
        if shown.trim() != fingerprint {
            return Err(format!(
                "the lobby shows {shown:?}, the server's certificate is {fingerprint}"
            ));
        }
        if s.count(&testid("room")).await? != 0 {
            return Err("the app joined a server it does not trust".into());
        }

        s.click(&testid("trust-and-join")).await?;
        s.wait_css(&testid("room"), Duration::from_secs(30)).await?;
        let kept = std::fs::read_to_string(work.join("config/trusted-servers.json"))
            .map_err(|e| format!("the trust was not kept: {e}"))?;
        let key = format!("localhost:{}", server.local_addr().port());
        if !kept.contains(&key) || !kept.contains(&fingerprint) {
            return Err(format!(
                "trusted-servers.json lacks {key} → {fingerprint}: {kept}"
            ));
        }
        Ok::<(), String>(())
    }
    .await;
    app.conclude(&work, outcome, &[]).await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("passed in {:.1?}", started.elapsed());
}
