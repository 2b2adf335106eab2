"""post-user-registration: after the user is stored; asynchronous, at least once."""

from __future__ import annotations

from authhooks.points.user_events import notification_point

POINT = notification_point(
    id="post-user-registration",
    description="React to a new user (notify a CRM, send a welcome message).",
    user={
        "email": "ada@example.com",
        "email_verified": False,
        "user_metadata": {},
        "app_metadata": {},
        "created_at": "2026-11-27T10:00:00Z",
    },
    templates={
        "hooks": '''\
def post_user_registration(user, context):
    """Runs after a user is stored, at least once: de-duplicate by context["event_id"].

    Its return value is only logged.
    """
    print("welcome", user["email"])
''',
        "actions": '''\
def on_execute_post_user_registration(event, api):
    """Runs after a user is stored, at least once: de-duplicate by event["event_id"].

    event: {"user": {"user_id", "email", ...}, "connection", "request", "tenant", "secrets"}
    """
    print("welcome", event["user"]["email"])
''',
        "hooks.js": """\
/**
 * Runs after a user is stored, at least once: de-duplicate by context.event_id.
 * @param {object} user - {id, email, ...}
 * @param {object} context - {webtask: {secrets}, request, connection, event_id, delivery}
 * @param {function} cb - cb(error); what is passed on is only logged
 */
module.exports = function (user, context, cb) {
  console.log('welcome', user.email);
  cb();
};
""",
        "actions.js": """\
/**
 * Runs after a user is stored, at least once: de-duplicate by event.event_id.
 * @param {object} event - {user: {user_id, email, ...}, connection, request, tenant, secrets}
 */
exports.onExecutePostUserRegistration = async (event, api) => {
  console.log('welcome', event.user.email);
};
""",
    },
)
