//! What the portal's and PipeWire's errors mean for the person: [`screen_error`] turns an
//! [`ashpd::Error`] into a [`ScreenError`] (pure, so every case is unit-tested by constructing it).

use super::super::error::ScreenError;
use ashpd::desktop::ResponseError;
use ashpd::zbus;

/// D-Bus errors that mean nobody on the bus implements the ScreenCast portal: no portal service
/// at all (`ServiceUnknown`, `NameHasNoOwner`), or one without ScreenCast.
const NO_PORTAL_ERRORS: [&str; 5] = [
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownObject",
];

/// The [`ScreenError`] for an error of the portal conversation.
///
/// - no session bus (no address, nothing listening there, or it refused us) → `NoSessionBus`;
/// - no portal frontend, or one without ScreenCast → `NoPortal`;
/// - the person closed the dialog → `Cancelled`;
/// - anything else → `Portal` with ashpd's description.
pub(crate) fn screen_error(error: ashpd::Error) -> ScreenError {
    match error {
        ashpd::Error::Response(ResponseError::Cancelled) => ScreenError::Cancelled,
        ashpd::Error::Response(ResponseError::Other) => ScreenError::Portal(
            "the portal ended the request without saying why (see the portal's log: \
             `journalctl --user -u xdg-desktop-portal`)"
                .into(),
        ),
        ashpd::Error::PortalNotFound(_) => ScreenError::NoPortal,
        ashpd::Error::Portal(ashpd::PortalError::Cancelled(_)) => ScreenError::Cancelled,
        ashpd::Error::Portal(ashpd::PortalError::ZBus(e)) | ashpd::Error::Zbus(e) => zbus_error(e),
        other => ScreenError::Portal(other.to_string()),
    }
}

/// The [`ScreenError`] for a D-Bus error met while talking to the portal.
pub(crate) fn zbus_error(error: zbus::Error) -> ScreenError {
    use std::io::ErrorKind;
    match &error {
        // Connecting: a malformed address, nothing listening (zbus ≥ 5.17 says `Connection`,
        // earlier ones a bare I/O error from the connect), or a bus that refused us.
        zbus::Error::Address(_) | zbus::Error::Connection(..) | zbus::Error::Handshake(_) => {
            ScreenError::NoSessionBus
        }
        zbus::Error::InputOutput(io)
            if matches!(
                io.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::PermissionDenied
            ) =>
        {
            ScreenError::NoSessionBus
        }
        zbus::Error::MethodError(name, _, _) if NO_PORTAL_ERRORS.contains(&name.as_str()) => {
            ScreenError::NoPortal
        }
        zbus::Error::FDO(fdo) => match fdo.as_ref() {
            zbus::fdo::Error::ServiceUnknown(_)
            | zbus::fdo::Error::NameHasNoOwner(_)
            | zbus::fdo::Error::UnknownMethod(_)
            | zbus::fdo::Error::UnknownInterface(_)
            | zbus::fdo::Error::UnknownObject(_) => ScreenError::NoPortal,
            _ => ScreenError::Portal(format!("D-Bus: {error}")),
        },
        _ => ScreenError::Portal(format!("D-Bus: {error}")),
    }
}

/// The [`ScreenError`] for a PipeWire call that failed.
pub(crate) fn pipewire_error(what: &str, error: pipewire::Error) -> ScreenError {
    ScreenError::PipeWire(format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use std::sync::Arc;
    use zbus::names::{OwnedErrorName, OwnedInterfaceName};

    fn io(kind: std::io::ErrorKind) -> Arc<std::io::Error> {
        Arc::new(std::io::Error::from(kind))
    }

    fn method_error(name: &str) -> zbus::Error {
        let message =
            zbus::Message::method_call("/org/freedesktop/portal/desktop", "CreateSession")
                .unwrap()
                .build(&())
                .unwrap();
        zbus::Error::MethodError(
            OwnedErrorName::try_from(name).unwrap(),
            Some("no such thing".into()),
            message,
        )
    }

    #[test]
    fn no_session_bus() {
        let address = zbus::Address::from_str("unix:path=/nonexistent").unwrap();
        for e in [
            zbus::Error::Connection(io(std::io::ErrorKind::NotFound), address),
            zbus::Error::InputOutput(io(std::io::ErrorKind::NotFound)),
            zbus::Error::InputOutput(io(std::io::ErrorKind::ConnectionRefused)),
            zbus::Error::Address("garbage".into()),
            zbus::Error::Handshake("auth refused".into()),
        ] {
            let mapped = screen_error(ashpd::Error::Zbus(e));
            assert!(matches!(mapped, ScreenError::NoSessionBus), "{mapped:?}");
        }
        let text = ScreenError::NoSessionBus.to_string();
        assert!(text.contains("needs a D-Bus session"), "{text}");
        assert!(text.contains("desktop session"), "{text}");
    }

    #[test]
    fn no_portal() {
        let screencast = OwnedInterfaceName::try_from("org.freedesktop.portal.ScreenCast").unwrap();
        let cases = [
            ashpd::Error::PortalNotFound(screencast),
            // A bus without any portal: `version` is swallowed, CreateSession fails like this.
            ashpd::Error::Portal(ashpd::PortalError::ZBus(method_error(
                "org.freedesktop.DBus.Error.ServiceUnknown",
            ))),
            ashpd::Error::Zbus(method_error("org.freedesktop.DBus.Error.UnknownMethod")),
            ashpd::Error::Zbus(zbus::Error::FDO(Box::new(
                zbus::fdo::Error::ServiceUnknown("org.freedesktop.portal.Desktop".into()),
            ))),
        ];
        for e in cases {
            let mapped = screen_error(e);
            assert!(matches!(mapped, ScreenError::NoPortal), "{mapped:?}");
        }
        let text = ScreenError::NoPortal.to_string();
        assert!(text.contains("no screen-sharing portal"), "{text}");
        assert!(text.contains("xdg-desktop-portal-gnome"), "{text}");
    }

    #[test]
    fn cancelled_is_a_notice() {
        for e in [
            ashpd::Error::Response(ResponseError::Cancelled),
            ashpd::Error::Portal(ashpd::PortalError::Cancelled("closed".into())),
        ] {
            let mapped = screen_error(e);
            assert!(mapped.is_cancelled(), "{mapped:?}");
        }
    }

    #[test]
    fn everything_else_is_a_portal_failure_with_its_reason() {
        let mapped = screen_error(ashpd::Error::Response(ResponseError::Other));
        assert!(matches!(mapped, ScreenError::Portal(ref m) if m.contains("without saying why")));
        let mapped = screen_error(ashpd::Error::Portal(ashpd::PortalError::NotAllowed(
            "screen casting is disabled".into(),
        )));
        assert!(
            matches!(mapped, ScreenError::Portal(ref m) if m.contains("screen casting is disabled")),
            "{mapped:?}"
        );
        let mapped = screen_error(ashpd::Error::Zbus(method_error(
            "org.freedesktop.DBus.Error.AccessDenied",
        )));
        assert!(
            matches!(mapped, ScreenError::Portal(ref m) if m.contains("AccessDenied")),
            "{mapped:?}"
        );
        let mapped = screen_error(ashpd::Error::Zbus(zbus::Error::InputOutput(io(
            std::io::ErrorKind::BrokenPipe,
        ))));
        assert!(matches!(mapped, ScreenError::Portal(_)), "{mapped:?}");
        let mapped = screen_error(ashpd::Error::RequiresVersion(4, 2));
        assert!(
            matches!(mapped, ScreenError::Portal(ref m) if m.contains("requires version 4")),
            "{mapped:?}"
        );
    }

    #[test]
    fn pipewire_errors_say_what_failed_and_hint_at_the_daemon() {
        let mapped = pipewire_error(
            "connecting to the portal's PipeWire remote",
            pipewire::Error::CreationFailed,
        );
        assert!(
            matches!(mapped, ScreenError::PipeWire(ref m) if m.starts_with("connecting to the portal's PipeWire remote: ")),
            "{mapped:?}"
        );
        assert!(
            mapped
                .to_string()
                .contains("systemctl --user status pipewire"),
            "{mapped}"
        );
    }
}
