// Asks for the API key once per browser tab and checks it against the API before keeping it.
import { checkKey, forgetApiKey, setApiKey } from "./api.js";
import { h } from "./dom.js";

export function renderLogin(root, onDone, reason) {
  const input = h("input", { type: "password", id: "api-key", autocomplete: "off",
    placeholder: "glk_…", size: 48, required: true });
  const error = h("p", { class: "error", id: "login-error" }, reason || "");
  const form = h("form", { id: "login", onsubmit: async (event) => {
    event.preventDefault();
    setApiKey(input.value);
    try {
      await checkKey();
      onDone();
    } catch (e) {
      forgetApiKey();
      error.textContent = `Not accepted: ${e.message}`;
    }
  } },
  h("h2", {}, "API key"),
  h("p", {}, "Kept in this tab only (sessionStorage) and sent as a Bearer token with each request."),
  input, " ", h("button", { type: "submit" }, "Open"), error);
  root.replaceChildren(form);
  input.focus();
}
