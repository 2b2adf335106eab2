// The ways of writing a hook (Auth0's Hooks and Actions conventions, in Python or
// JavaScript), as a point describes them: which one a script uses, the names it
// gives the arguments, and the code a new one starts from.

import type { ConventionName, Hint, Point, Runtime } from "./types";

export const CONVENTIONS: { name: ConventionName; label: string }[] = [
  { name: "hooks", label: "Hooks" },
  { name: "actions", label: "Actions" },
];

export const LANGUAGES: { name: Runtime; label: string }[] = [
  { name: "python", label: "Python" },
  { name: "node", label: "JavaScript" },
];

export function label(name: ConventionName): string {
  return CONVENTIONS.find((each) => each.name === name)?.label ?? name;
}

export function languageLabel(name: Runtime): string {
  return LANGUAGES.find((each) => each.name === name)?.label ?? name;
}

/** One convention in one language, in the terms the editor needs. */
export type Variant = {
  signature: string;
  template: string;
  params: string[]; // the arguments, by the point's names
  hints: Hint[];
  /** Matches the code's definition of the function; its group 1 is the parameter list. */
  definition: RegExp;
  /** The line completion offers before the code defines either function. */
  opener: string;
};

const escape = (text: string) => text.replace(/[^\w]/g, "\\$&");
// ``= async function name(``, ``= function (``, ``= async (``, ``= (``.
const JS_FUNCTION = String.raw`[ \t]*=[ \t]*(?:async[ \t]+)?(?:function\b[^(\n]*)?\(([^)]*)\)`;

export function variant(point: Point, name: ConventionName, language: Runtime): Variant {
  const convention = point.conventions[name];
  if (language === "python") {
    return {
      signature: convention.signature,
      template: convention.template,
      params: convention.params,
      hints: convention.hints,
      definition: new RegExp(`^(?:async[ \\t]+)?def[ \\t]+${escape(convention.function)}[ \\t]*\\(([^)]*)\\)`, "m"),
      opener: `def ${convention.function}(${convention.params.join(", ")}):`,
    };
  }
  const js = convention.javascript;
  const params = (js.signature.match(/\(([^)]*)\)/)?.[1] ?? "")
    .split(",")
    .map((param) => param.trim())
    .filter(Boolean);
  // Actions: ``exports.onExecuteX = async (event, api)`` (``module.exports.onExecuteX``
  // too, which Node reads the same); Hooks: ``module.exports = function (..., cb)``.
  const exported = js.signature.match(/^exports\.(\w+)/)?.[1];
  const target = exported ? String.raw`(?:module\.)?exports\.${escape(exported)}` : String.raw`module\.exports`;
  return {
    signature: js.signature,
    template: js.template,
    params,
    hints: js.hints,
    definition: new RegExp(String.raw`^[ \t]*${target}${JS_FUNCTION}`, "m"),
    opener: `${js.signature}${exported ? " =>" : ""} {`,
  };
}

// What only JavaScript hook code does at its top level, as the server tells the
// languages apart (hooks/lifecycle.py), and what only Python hook code does.
const JAVASCRIPT = /^\s*(?:module\.exports(?:\.\w+)?\s*=|exports\.\w+\s*=)/m;
const PYTHON = /^(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(/m;

/** The language ``code`` is in; ``current`` while it says neither (an empty editor,
 * say), so that the editor does not flip between languages as one types. */
export function languageOf(code: string, current: Runtime): Runtime {
  if (JAVASCRIPT.test(code)) return "node";
  if (PYTHON.test(code)) return "python";
  return current;
}

/** The convention whose function ``code`` defines at its top level; the server runs
 * the Actions one when both are there (docs/hooks.md), and so it is checked first. */
export function conventionOf(code: string, point: Point, language: Runtime): ConventionName | null {
  if (variant(point, "actions", language).definition.test(code)) return "actions";
  if (variant(point, "hooks", language).definition.test(code)) return "hooks";
  return null;
}

/** The names ``code`` gives the convention's parameters, by the point's names
 * (``def on_execute_credentials_exchange(evt, api)`` calls ``event`` ``evt``). */
export function parameterNames(code: string, of: Variant): Record<string, string> {
  const found = code.match(of.definition);
  const names: Record<string, string> = {};
  if (!found) return names;
  found[1].split(",").forEach((param, index) => {
    const name = param.trim().replace(/^\*+|^\.\.\./, "").match(/^[A-Za-z_$][\w$]*/)?.[0];
    if (name && index < of.params.length) names[name] = of.params[index];
  });
  return names;
}

/** The code a new hook starts from: the point's template, or (for a point that
 * lists none in that language) the least code of its signature. */
export function starter(point: Point, name: ConventionName, language: Runtime): string {
  const chosen = variant(point, name, language);
  if (chosen.template) return chosen.template;
  if (language === "python") return `${chosen.signature}:\n    pass\n`;
  return name === "hooks" ? `${chosen.signature} {\n  cb(null, {});\n};\n` : `${chosen.signature} => {\n};\n`;
}
