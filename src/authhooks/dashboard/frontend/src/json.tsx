// A JSON value edited in CodeMirror (a point's schemas and sample event): JSON
// highlighting, bracket matching and folding, and what JSON.parse refuses marked
// where it is. An empty field is no value at all (an optional key left out).

import { json, jsonParseLinter } from "@codemirror/lang-json";
import { linter, lintGutter } from "@codemirror/lint";
import { EditorView, basicSetup } from "codemirror";
import { useEffect, useRef } from "preact/hooks";

/** The page's CSP nonce, which lets an editor add its style sheets. */
export function cspNonce(): string {
  return document.querySelector('meta[name="csp-nonce"]')?.getAttribute("content") ?? "";
}

/** ``value`` as the field shows it: indented, or empty for none. */
export function shown(value: unknown): string {
  return value === null || value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** The field's text as a value: undefined when empty; an Error naming the field
 * when it is not JSON. */
export function parsed(name: string, text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (failure) {
    throw new Error(`${name} is not JSON: ${failure instanceof Error ? failure.message : String(failure)}`);
  }
}

const parseLinter = jsonParseLinter();

/** A JSON editor starting with ``initial``; ``onChange`` gets its text as it changes.
 * Remount it (a new ``key``) to start again from another text. */
export function JsonField({
  name,
  initial,
  onChange,
}: {
  name: string;
  initial: string;
  onChange: (text: string) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const listener = useRef(onChange);
  listener.current = onChange;
  useEffect(() => {
    const view = new EditorView({
      doc: initial,
      parent: host.current!,
      extensions: [
        EditorView.cspNonce.of(cspNonce()),
        basicSetup,
        json(),
        lintGutter(),
        // An empty field is a value left out, not a mistake.
        linter((found) => (found.state.doc.toString().trim() ? parseLinter(found) : [])),
        EditorView.contentAttributes.of({ "aria-label": name }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) listener.current(update.state.doc.toString());
        }),
      ],
    });
    return () => view.destroy();
  }, []);
  return <div class="json-field" data-field={name} ref={host} />;
}
