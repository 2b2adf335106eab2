// The two ways of writing a hook (Auth0's Hooks and Actions conventions), as a point
// describes them: which one a script uses, and the code a new one starts from.

import type { Convention, ConventionName, Point } from "./types";

export const CONVENTIONS: { name: ConventionName; label: string }[] = [
  { name: "hooks", label: "Hooks" },
  { name: "actions", label: "Actions" },
];

export function label(name: ConventionName): string {
  return CONVENTIONS.find((each) => each.name === name)?.label ?? name;
}

function definition(code: string, convention: Convention): RegExpMatchArray | null {
  const name = convention.function.replace(/[^\w]/g, "\\$&");
  return code.match(new RegExp(`^(?:async[ \\t]+)?def[ \\t]+${name}[ \\t]*\\(([^)]*)\\)`, "m"));
}

/** The convention whose function ``code`` defines at module level; the server runs
 * the Actions one when both are there (docs/hooks.md), and so it is checked first. */
export function conventionOf(code: string, point: Point): ConventionName | null {
  if (definition(code, point.conventions.actions)) return "actions";
  if (definition(code, point.conventions.hooks)) return "hooks";
  return null;
}

/** The names ``code`` gives the convention's parameters, by the point's names
 * (``def on_execute_credentials_exchange(evt, api)`` calls ``event`` ``evt``). */
export function parameterNames(code: string, convention: Convention): Record<string, string> {
  const found = definition(code, convention);
  const names: Record<string, string> = {};
  if (!found) return names;
  found[1].split(",").forEach((param, index) => {
    const name = param.trim().replace(/^\*+/, "").match(/^\w+/)?.[0];
    if (name && index < convention.params.length) names[name] = convention.params[index];
  });
  return names;
}

/** The code a new hook in ``name`` starts from: the point's template. */
export function starter(point: Point, name: ConventionName): string {
  const convention = point.conventions[name];
  return convention.template || `${convention.signature}:\n    pass\n`;
}
