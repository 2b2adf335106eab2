// The editor's completion, from the point's hints (GET /api/v2/points) for the
// convention the code uses, in the code's language: the function's arguments, the
// keys of what they hold at any depth, the methods of an Actions ``api``
// (``api.access_token.set_custom_claim`` in Python, ``api.accessToken.setCustomClaim``
// in JavaScript), and the hook's secret names.

import {
  Completion,
  CompletionContext,
  CompletionResult,
  insertCompletionText,
  pickedCompletion,
} from "@codemirror/autocomplete";

import { CONVENTIONS, conventionOf, parameterNames, variant } from "./conventions";
import type { Hint, Point, Runtime } from "./types";

const QUOTED = String.raw`(?:"[^"\n]*"|'[^'\n]*')`;
// One step into a value: ["key"], .get("key", default), or .attribute.
const STEP = String.raw`(?:\[${QUOTED}\]|\.get\(${QUOTED}[^)\n]*\)|\.[A-Za-z_]\w*)`;
// A name, its steps, and the step being typed: ``event["client"].``, ``context["se``.
const CHAIN = new RegExp(String.raw`[A-Za-z_]\w*${STEP}*(?:\.get\(["']|\[["']|\.)\w*`);
const LEADING_STEP = new RegExp(`^${STEP}`);
const OPEN_STEP = /^(\.get\(["']|\[["']|\.)(\w*)$/;

type Chain = { root: string; keys: string[]; opener: string; partial: string };

function parse(text: string): Chain | null {
  const root = text.match(/^[A-Za-z_]\w*/)?.[0];
  if (!root) return null;
  const keys: string[] = [];
  let rest = text.slice(root.length);
  for (;;) {
    const open = rest.match(OPEN_STEP);
    if (open) return { root, keys, opener: open[1], partial: open[2] };
    const step = rest.match(LEADING_STEP)?.[0];
    if (!step) return null;
    keys.push(step.startsWith(".") && !step.startsWith(".get(") ? step.slice(1) : (step.match(/["']([^"']*)["']/)?.[1] ?? ""));
    rest = rest.slice(step.length);
  }
}

/** CodeMirror's icon for a hint's type. */
function kind(type: string): string {
  return type === "function" ? "method" : type === "namespace" ? "namespace" : "property";
}

/** The names one step below ``path``, from every hint under it; a name with no hint
 * of its own is a namespace (``api.access_token``). */
function children(hints: Hint[], path: string): Hint[] {
  const found = new Map<string, Hint>();
  for (const hint of hints) {
    if (!hint.path.startsWith(`${path}.`)) continue;
    const name = hint.path.slice(path.length + 1).split(".")[0];
    const exact = hints.find((each) => each.path === `${path}.${name}`);
    if (!found.has(name)) found.set(name, { path: name, type: exact?.type ?? "namespace" });
  }
  return [...found.values()];
}

/** Python hook code gets plain dicts, but an Actions ``api`` and its namespaces are
 * objects whose methods are attributes. */
function isObject(hints: Hint[], path: string): boolean {
  return hints.some((hint) => hint.type === "function" && hint.path.startsWith(`${path}.`));
}

/** ``.key`` on a dict becomes ``["key"]``, which Python reads. */
function subscript(key: string): Completion["apply"] {
  return (view, completion, from, to) => {
    const text = `[${JSON.stringify(key)}]`;
    view.dispatch({
      ...insertCompletionText(view.state, text, from - 1, to),
      annotations: pickedCompletion.of(completion),
    });
  };
}

export function completions(point: () => Point | null, secrets: () => string[], language: () => Runtime) {
  return (context: CompletionContext): CompletionResult | null => {
    const current = point();
    if (!current) return null;
    const code = context.state.doc.toString();
    const written = language();
    const used = conventionOf(code, current, written);
    // Before the code defines either function, both conventions' names are offered.
    const variants = (used ? [used] : CONVENTIONS.map(({ name }) => name)).map((name) =>
      variant(current, name, written),
    );
    const hints = variants.flatMap((each) => each.hints);

    const typed = context.matchBefore(CHAIN);
    if (typed) {
      const chain = parse(typed.text);
      if (!chain) return null;
      const names = used ? parameterNames(code, variants[0]) : {};
      const path = [names[chain.root] ?? chain.root, ...chain.keys].join(".");
      const from = typed.to - chain.partial.length;
      // JavaScript reads ``event.client`` as it is; Python needs ``event["client"]``.
      const dict = written === "python" && chain.opener === "." && !isObject(hints, path);
      if (chain.keys.at(-1) === "secrets" && hints.some((hint) => hint.path === path)) {
        return {
          from,
          options: secrets().map((name) => ({
            label: name,
            type: "constant",
            detail: "secret",
            apply: dict ? subscript(name) : undefined,
          })),
          validFor: /^\w*$/,
        };
      }
      const below = children(hints, path);
      if (below.length === 0) return null;
      return {
        from,
        options: below.map((hint) => ({
          label: hint.path,
          type: kind(hint.type),
          detail: hint.type,
          apply: dict ? subscript(hint.path) : undefined,
        })),
        validFor: /^\w*$/,
      };
    }

    const word = context.matchBefore(/\w+/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    const options: Completion[] = [];
    for (const each of variants) {
      const names = used ? Object.keys(parameterNames(code, each)) : [];
      for (const name of names.length ? names : each.params) {
        options.push({ label: name, type: "variable", detail: "argument" });
      }
      if (!used) options.push({ label: each.opener, type: "function", detail: current.id });
    }
    return { from: word.from, options };
  };
}
