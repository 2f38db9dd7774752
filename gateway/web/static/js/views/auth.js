// Sign in / register.

import { login, register } from "../api.js";
import { act, errorBox, h, replace } from "../ui.js";

export function render(main, _params, done) {
  let mode = "signin";
  const box = errorBox();
  const draw = () => {
    const registering = mode === "register";
    const email = h("input", { type: "email", name: "email", required: true, autocomplete: "username" });
    const password = h("input", { type: "password", name: "password", required: true, minlength: 8,
      autocomplete: registering ? "new-password" : "current-password" });
    const name = h("input", { type: "text", name: "full_name", autocomplete: "name" });
    const submit = h("button", { type: "submit" }, registering ? "Create account" : "Sign in");
    const form = h("form", {
      "aria-label": registering ? "Register" : "Sign in",
      onsubmit: (event) => {
        event.preventDefault();
        act(submit, box, async () => {
          if (registering) await register(email.value.trim(), password.value, name.value.trim());
          await login(email.value.trim(), password.value);
          done();
        });
      },
    },
    h("label", {}, "Email", email),
    h("label", {}, registering ? "Password (8 characters or more)" : "Password", password),
    registering ? h("label", {}, "Name (optional)", name) : null,
    submit);
    const other = h("button", { type: "button", class: "ghost", onclick: () => {
      mode = registering ? "signin" : "register"; box.show(null); draw();
    } }, registering ? "I have an account: sign in" : "New here? Create an account");
    replace(main, h("section", { class: "auth panel" },
      h("h1", {}, registering ? "Create your account" : "Sign in to opswire"), box, form, h("p", {}, other)));
    email.focus();
  };
  draw();
  return null;
}
