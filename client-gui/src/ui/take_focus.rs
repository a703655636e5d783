//! A field that takes the keyboard focus when it appears and whenever its selector is
//! sent: the connect screen's nickname and the search bar's query start focused (the
//! user types at once), and Ctrl+F focuses the search field again when it is open.

use druid::widget::Controller;
use druid::{Env, Event, EventCtx, LifeCycle, LifeCycleCtx, Selector, Widget};

/// See the module documentation. The selector is the field's own, so that a command
/// sent to the whole window (Ctrl+F) reaches only the field it names.
pub struct TakeFocus(pub Selector);

impl<T, W: Widget<T>> Controller<T, W> for TakeFocus {
    fn event(&mut self, child: &mut W, ctx: &mut EventCtx, event: &Event, data: &mut T, env: &Env) {
        if let Event::Command(c) = event {
            if c.is(self.0) {
                ctx.request_focus();
                return;
            }
        }
        child.event(ctx, event, data, env);
    }

    fn lifecycle(
        &mut self,
        child: &mut W,
        ctx: &mut LifeCycleCtx,
        event: &LifeCycle,
        data: &T,
        env: &Env,
    ) {
        if let LifeCycle::WidgetAdded = event {
            // Focus can only be asked for once the widget is registered: by a command
            // to itself, handled above.
            ctx.submit_command(self.0.to(ctx.widget_id()));
        }
        child.lifecycle(ctx, event, data, env);
    }
}
