// Sign-in: the panel that asks for a token (opened by a 401, or by the Sign in button), the account line in the
// top bar, and sign-out. The token lives in sessionStorage (api.js): this tab only, until sign-out or the tab closes.
import { ApiError, currentToken, onAuthFailure, storeToken, tokenSubject } from "./api.js";
import { $ } from "./dom.js";

/**
 * Wires the panel. `probe()` makes one call with the stored token (a 401 means the server does not accept it);
 * `changed()` runs after a sign-in or sign-out (reconnect the tail, poll again).
 */
export function createSignIn({ probe, changed }) {
  const panel = $("signin");
  const errorLine = $("signin-error");
  /** The token (or "" for none) for which the user closed the panel: refusals do not reopen it. */
  let dismissedFor = null;

  /**
   * Shows the panel with `reason`. Opened by a refusal (`automatic`), it closes by itself once calls work again,
   * and stays closed after Cancel until the token changes; opened by the Sign in button, it stays open.
   */
  const show = (reason, automatic = true) => {
    if (automatic && dismissedFor === currentToken()) return;
    $("signin-reason").textContent = reason;
    if (panel.hidden) {
      panel.dataset.automatic = String(automatic);
      panel.hidden = false;
      $("signin-token").focus();
    }
  };

  const hide = ({ onlyAutomatic = false } = {}) => {
    if (onlyAutomatic && panel.dataset.automatic !== "true") return;
    panel.hidden = true;
    errorLine.textContent = "";
  };

  /** The top bar's account line: who the token says it is, and sign in / sign out. */
  const renderAccount = () => {
    const token = currentToken();
    $("account-name").textContent = token ? `Signed in as ${tokenSubject(token) ?? "token"}` : "Not signed in";
    $("sign-out").hidden = !token;
    $("sign-in-open").hidden = Boolean(token);
  };

  onAuthFailure((error) => {
    show(
      currentToken()
        ? `The server refused this tab's token — ${error}. Sign in again with a valid token.`
        : `This server needs a token — ${error}. Paste one (e.g. from \`streamgate token create\`); it is kept in this tab only.`,
    );
  });

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("signin-token").value.trim();
    if (!token) {
      errorLine.textContent = "Paste a token first.";
      return;
    }
    const previous = currentToken();
    storeToken(token);
    try {
      await probe();
    } catch (failure) {
      // Only a 401 refuses the token itself; a 403 (valid token, fewer grants) signs in and is explained after.
      if (failure instanceof ApiError && failure.httpStatus === 401) {
        storeToken(previous);
        errorLine.textContent = `Not accepted — ${failure}`;
        panel.hidden = false;
        renderAccount();
        return;
      }
    }
    $("signin-token").value = "";
    dismissedFor = null;
    hide();
    renderAccount();
    changed();
  });

  $("sign-out").addEventListener("click", () => {
    storeToken("");
    dismissedFor = null;
    renderAccount();
    changed();
  });
  $("sign-in-open").addEventListener("click", () => show("Paste a token; it is kept in this tab only.", false));
  $("signin-cancel").addEventListener("click", () => {
    dismissedFor = currentToken();
    hide();
  });

  renderAccount();
  return { show, hide };
}
