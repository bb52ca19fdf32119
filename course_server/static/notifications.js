// The notifications page: one EventSource on /notifications/stream.
//
// There is no reconnect code here on purpose: EventSource reconnects by itself after a dropped
// connection (waiting the `retry:` the server sent) and sends the last `id:` it saw as the
// Last-Event-ID header, so the server resumes right after it. All text goes in via textContent.
"use strict";

const list = document.getElementById("messages");
const status = document.getElementById("status");

// For the browser tests: what the page shows, to wait on instead of sleeping.
window.notificationState = { state: "connecting", ids: [], opens: 0 };

function setState(state, text) {
  window.notificationState.state = state;
  status.dataset.state = state;
  status.textContent = text;
}

function show(id, notification) {
  const item = document.createElement("li");
  item.className = "message";
  const title = document.createElement("b");
  title.textContent = notification.title;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = notification.body ? ` ${notification.body}` : "";
  item.dataset.id = id;
  item.append(title, body);
  list.append(item);
}

// Relative to the page (/notifications/page), so it works under a proxy prefix (/proxy/PORT/).
const source = new EventSource("stream");
setState("connecting", "connecting…");

source.addEventListener("open", () => {
  window.notificationState.opens += 1;
  setState("open", "live");
});

source.addEventListener("error", () => {
  // CONNECTING: the browser is already retrying; CLOSED: it gave up (an HTTP error status).
  if (source.readyState === EventSource.CLOSED) {
    setState("closed", "disconnected: the server refused the stream");
  } else {
    setState("reconnecting", "reconnecting…");
  }
});

source.addEventListener("notification", (event) => {
  const id = Number(event.lastEventId);
  // Resume makes duplicates impossible from the server's side; this guard keeps the page honest.
  if (window.notificationState.ids.includes(id)) return;
  window.notificationState.ids.push(id);
  show(id, JSON.parse(event.data));
});
