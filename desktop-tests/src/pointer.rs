//! The mouse: double clicks on tiles, and pinning a tile to the stage with one.

use crate::driver::Session;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use std::time::{Duration, Instant};

/// How long a double click has to show on the stage before it is taken as missed.
const TOOK_WITHIN: Duration = Duration::from_secs(2);

impl Session {
    /// A real double click (pointer down/up twice) in the centre of the first element matching
    /// `css`: clear of a tile's pin button (top right) and its name (bottom left).
    pub async fn double_click(&self, css: &str, bound: Duration) -> Result<(), String> {
        let el = self.wait_css(css, bound).await?;
        let click = [
            PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            },
            PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            },
        ];
        let mut actions = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element: el,
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        for a in click.iter().chain(click.iter()) {
            actions = actions.then(a.clone());
        }
        self.client
            .perform_actions(actions)
            .await
            .map_err(|e| format!("double click on {css}: {e}"))?;
        self.client
            .release_actions()
            .await
            .map_err(|e| format!("releasing the mouse: {e}"))
    }

    /// Double clicks `target` until attribute `name` of `stage` is `value` (at most `bound`).
    /// Tiles slide for 0.2 s after the layout changes (someone joining, the side panel closing,
    /// a pin): a double click that lands on a tile's old place does nothing, and is tried
    /// again; one that took changes the stage at once, so a toggle is never applied twice.
    pub async fn toggle_pin(
        &self,
        target: &str,
        stage: &str,
        (name, value): (&str, &str),
        bound: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + bound;
        loop {
            self.double_click(target, bound).await?;
            let took = self.wait_attr(stage, name, value, TOOK_WITHIN).await;
            if took.is_ok() || Instant::now() >= deadline {
                return took;
            }
            eprintln!("a double click on {target} did not change {stage}'s {name}; again");
        }
    }
}
