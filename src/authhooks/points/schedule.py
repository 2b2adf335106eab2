"""schedule: a hook that runs on its own cron expression (points/cron.py), once per
tick across every server process and node; asynchronous, nobody waits for it.

Built on the same contract as the points operators declare from data
(declared.py), from a fixed spec: its hooks get ``event`` and ``context``
(``secrets``) in the Hooks convention, ``event`` with ``secrets`` in the Actions
one, and what they return is only logged. The scheduler (flows/schedules.py)
builds the event; each hook's schedule is stored with it (hooks/schedules.py).
"""

from __future__ import annotations

from dataclasses import replace

from authhooks.points.declared import declare

ID = "schedule"

_SPEC = {
    "id": ID,
    "description": (
        "Run on a cron schedule, once per tick across every server process and node "
        "(reports, clean-ups, syncs)."
    ),
    "blocking": False,
    "event_schema": {
        "type": "object",
        "required": ["scheduled_at", "hook", "schedule"],
        "additionalProperties": False,
        "properties": {
            "scheduled_at": {
                "type": "string",
                "format": "date-time",
                "description": "The tick this run is for, in UTC (ISO 8601)",
            },
            "hook": {
                "type": "object",
                "required": ["id", "name"],
                "additionalProperties": False,
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
            },
            "schedule": {
                "type": "object",
                "required": ["cron", "timezone"],
                "additionalProperties": False,
                "properties": {"cron": {"type": "string"}, "timezone": {"type": "string"}},
            },
        },
    },
    "sample_event": {
        "scheduled_at": "2026-12-07T09:30:00Z",
        "hook": {"id": "01f3c2a9d84b7e6150c9a2d4e8f1b3", "name": "nightly-report"},
        "schedule": {"cron": "30 9 * * *", "timezone": "UTC"},
    },
}

_TEMPLATES = {
    "hooks": '''\
def schedule(event, context):
    """Runs on this hook's schedule, once per tick across every server process.

    event:   {"scheduled_at": the tick, ISO 8601 in UTC, "hook": {"id", "name"},
              "schedule": {"cron", "timezone"}}
    context: {"secrets": this hook's secrets}
    What it returns is only logged.
    """
    print("tick", event["scheduled_at"])
''',
    "actions": '''\
def on_execute_schedule(event, api):
    """Runs on this hook's schedule, once per tick across every server process.

    event: {"scheduled_at": the tick, ISO 8601 in UTC, "hook": {"id", "name"},
            "schedule": {"cron", "timezone"}, "secrets": this hook's secrets}
    """
    print("tick", event["scheduled_at"])
''',
    "hooks.js": """\
/**
 * Runs on this hook's schedule, once per tick across every server process.
 * @param {object} event - {scheduled_at: the tick (ISO 8601, UTC), hook: {id, name},
 *   schedule: {cron, timezone}}
 * @param {object} context - {webtask: {secrets}}
 * @param {function} cb - cb(error); what is passed on is only logged
 */
module.exports = function (event, context, cb) {
  console.log('tick', event.scheduled_at);
  cb();
};
""",
    "actions.js": """\
/**
 * Runs on this hook's schedule, once per tick across every server process.
 * @param {object} event - {scheduled_at, hook: {id, name}, schedule: {cron, timezone}, secrets}
 */
exports.onExecuteSchedule = async (event, api) => {
  console.log('tick', event.scheduled_at);
};
""",
}

POINT = replace(declare(_SPEC), templates=_TEMPLATES)
