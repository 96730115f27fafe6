/* Talking to the server: JSON in, JSON out, and the server's own error message when it says no. */

/**
 * Fetch `path` and return its JSON body.
 * On an HTTP error, throws an Error carrying the server's message, its error `code`
 * (e.g. "no_ink") and the `status`.
 */
export async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) {
    const err = new Error((body && body.message) || `the server answered ${r.status}`);
    err.code = body && body.error; err.status = r.status;
    throw err;
  }
  return body;
}

/** POST `body` as JSON to `path`; see `api`. */
export const postJSON = (path, body) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});
