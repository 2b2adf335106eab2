// A single-page app as people write them with oidc-client-ts: authorization code
// with PKCE, tokens kept in the page, refresh tokens for renewal, RP-initiated
// logout. The test passes the server and client in the page's query string once.
const params = new URLSearchParams(location.search);
if (params.get("authority")) {
  sessionStorage.setItem("authority", params.get("authority"));
  sessionStorage.setItem("client_id", params.get("client_id"));
  sessionStorage.setItem("audience", params.get("audience") || "");
}
const origin = location.origin;
const manager = new oidc.UserManager({
  authority: sessionStorage.getItem("authority"),
  client_id: sessionStorage.getItem("client_id"),
  redirect_uri: origin + "/index.html",
  post_logout_redirect_uri: origin + "/index.html?signed_out=1",
  response_type: "code",
  scope: "openid profile email offline_access",
  extraQueryParams: sessionStorage.getItem("audience") ? { audience: sessionStorage.getItem("audience") } : {},
  loadUserInfo: true,
  automaticSilentRenew: false,
  userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
});
const status = document.getElementById("status");
const show = (user) => {
  document.getElementById("profile").textContent = JSON.stringify({
    profile: user.profile,
    access_token: user.access_token,
    refresh_token: user.refresh_token,
    scope: user.scope,
  });
};
const fail = (error) => { status.textContent = "error: " + (error.error || "") + " " + error.message; };
document.getElementById("login").onclick = () => manager.signinRedirect().catch(fail);
document.getElementById("signup").onclick = () =>
  manager.signinRedirect({ extraQueryParams: { screen_hint: "signup" } }).catch(fail);
document.getElementById("refresh").onclick = () =>
  manager.signinSilent().then((user) => { show(user); status.textContent = "refreshed"; }).catch(fail);
document.getElementById("logout").onclick = () => manager.signoutRedirect().catch(fail);

(async () => {
  try {
    if (params.has("code") || params.has("error")) {
      const user = await manager.signinRedirectCallback();
      history.replaceState(null, "", "/index.html");
      show(user);
      status.textContent = "signed in";
    } else if (params.has("signed_out")) {
      await manager.signoutRedirectCallback();
      status.textContent = "signed out";
    } else {
      const user = await manager.getUser();
      status.textContent = user ? "signed in" : "anonymous";
      if (user) show(user);
    }
  } catch (error) {
    fail(error);
  }
})();
