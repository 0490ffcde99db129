//! Invite links made in the app: the server signs (`create_invite`), the link is built here
//! from the address the app joined through when the server does not know its public one.

use crate::api::{ErrorKind, InviteView, UiError};
use videoroom_client::Invite;

/// The link for `invite` to `room` on the server the app reached at `server_url`
/// (`ws[s]://host:port/ws`): the server's own link if it gave one, else
/// `http[s]://host:port/r/<room>`, with `#token=…` when there is a token.
pub fn invite_view(server_url: &str, room: &str, invite: Invite) -> Result<InviteView, UiError> {
    let url = match invite.url {
        Some(url) => url,
        None => link_from(server_url, room, invite.token.as_deref()).ok_or_else(|| {
            UiError::new(
                ErrorKind::Internal,
                format!("cannot make a link from the server address {server_url}"),
                None,
            )
        })?,
    };
    Ok(InviteView {
        url,
        token: invite.token,
        expires_at: invite.expires_at,
    })
}

fn link_from(server_url: &str, room: &str, token: Option<&str>) -> Option<String> {
    let mut url = url::Url::parse(server_url.trim()).ok()?;
    let scheme = match url.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    url.set_scheme(scheme).ok()?;
    url.set_query(None);
    url.set_path("");
    url.path_segments_mut().ok()?.clear().extend(["r", room]);
    url.set_fragment(token.map(|t| format!("token={t}")).as_deref());
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_the_address_the_app_joined_through() {
        assert_eq!(
            link_from("ws://127.0.0.1:8080/ws", "Team sync", Some("a.b.c")).as_deref(),
            Some("http://127.0.0.1:8080/r/Team%20sync#token=a.b.c")
        );
        assert_eq!(
            link_from("wss://meet.example.org/ws?x=1", "design", None).as_deref(),
            Some("https://meet.example.org/r/design")
        );
        assert_eq!(link_from("ftp://x/ws", "r", None), None);
        assert_eq!(link_from("not a url", "r", None), None);
    }
}
