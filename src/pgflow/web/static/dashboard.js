// The dashboard's only script: keeps relative times current, refreshes the live region of a
// page when the server reports an event for it, and sends the actions. No framework, no CDN.
(() => {
  "use strict";
  const base = document.body.dataset.base || "";

  function ago(iso) {
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
      if (seconds >= size) return Math.floor(seconds / size) + unit + " ago";
    }
    return Math.max(0, Math.floor(seconds)) + "s ago";
  }

  function refreshTimes(root) {
    for (const time of root.querySelectorAll("time[data-relative]")) {
      time.textContent = ago(time.dateTime);
    }
  }

  async function send(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
    });
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(payload.detail || response.statusText);
    return payload;
  }

  function bindActions(root) {
    for (const button of root.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const run = await send(button.dataset.action, {});
          const here = document.getElementById("live")?.dataset.liveRun;
          if (run.run_id !== here) {
            // A retry is a new run: follow it.
            window.location.assign(base + "/runs/" + encodeURIComponent(run.run_id));
          }
        } catch (error) {
          window.alert(error.message);
        } finally {
          button.disabled = false;
        }
      });
    }
  }

  // Enabling or disabling a schedule changes its row: show the page again.
  for (const button of document.querySelectorAll("button[data-schedule-action]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await send(button.dataset.scheduleAction, {});
        window.location.reload();
      } catch (error) {
        window.alert(error.message);
        button.disabled = false;
      }
    });
  }

  for (const form of document.querySelectorAll("form[data-start]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const output = form.querySelector("output");
      let input;
      try {
        input = JSON.parse(form.elements.input.value || "null");
      } catch (error) {
        output.textContent = "The input is not JSON: " + error.message;
        return;
      }
      try {
        const run = await send(form.dataset.start, { input });
        window.location.assign(base + "/runs/" + encodeURIComponent(run.run_id));
      } catch (error) {
        output.textContent = error.message;
      }
    });
  }

  refreshTimes(document);
  bindActions(document);
  window.setInterval(() => refreshTimes(document), 5000);

  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const indicator = document.getElementById("live-state");
  const runId = live.dataset.liveRun;
  // One run's page follows every step; a list only cares about runs starting and finishing.
  const delay = runId ? 100 : 700;
  let timer = null;
  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const response = await fetch(live.dataset.liveSrc, { credentials: "same-origin" });
      if (response.ok) {
        const html = await response.text();
        const wasOpen = new Map();
        for (const details of live.querySelectorAll("details[id]")) {
          wasOpen.set(details.id, details.open);
        }
        // The fragment is rendered by this server with every value escaped.
        live.innerHTML = html;
        for (const details of live.querySelectorAll("details[id]")) {
          if (wasOpen.has(details.id)) details.open = wasOpen.get(details.id);
        }
        refreshTimes(live);
        bindActions(live);
      }
    } finally {
      busy = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(() => {
        timer = null;
        refresh();
      }, delay);
    }
  }

  const source = new EventSource(
    base + "/api/events" + (runId ? "?run_id=" + encodeURIComponent(runId) : ""),
  );
  source.addEventListener("open", () => {
    indicator.textContent = "live";
    indicator.className = "live-state on";
    schedule(); // whatever happened before the stream opened (or while it was down)
  });
  source.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (runId || String(event.event_type).startsWith("run:")) schedule();
  });
  source.addEventListener("resync", schedule);
  source.addEventListener("error", () => {
    indicator.textContent = "reconnecting…";
    indicator.className = "live-state off";
  });
})();
