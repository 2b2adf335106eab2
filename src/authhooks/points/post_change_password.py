"""post-change-password: after a password change; asynchronous, at least once."""

from __future__ import annotations

from authhooks.points.user_events import notification_point

POINT = notification_point(
    id="post-change-password",
    description="React to a password change (notify the user, revoke sessions elsewhere).",
    user={"email": "ada@example.com", "last_password_reset": "2026-11-27T10:00:00Z"},
    templates={
        "hooks": '''\
def post_change_password(user, context):
    """Runs after a user's password changed, at least once: de-duplicate by
    context["event_id"]. Its return value is only logged."""
    print("password changed for", user["email"])
''',
        "actions": '''\
def on_execute_post_change_password(event, api):
    """Runs after a user's password changed, at least once: de-duplicate by
    event["event_id"]. Nothing to change on the user: it is only told."""
    print("password changed for", event["user"]["email"])
''',
        "hooks.js": """\
/**
 * Runs after a user's password changed, at least once: de-duplicate by context.event_id.
 * @param {object} user - {id, email, last_password_reset, ...}
 * @param {object} context - {webtask: {secrets}, request, connection, event_id, delivery}
 * @param {function} cb - cb(error)
 */
module.exports = function (user, context, cb) {
  console.log('password changed for', user.email);
  cb();
};
""",
        "actions.js": """\
/**
 * Runs after a user's password changed, at least once: de-duplicate by event.event_id.
 */
exports.onExecutePostChangePassword = async (event, api) => {
  console.log('password changed for', event.user.email);
};
""",
    },
)
