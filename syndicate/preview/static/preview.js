// The live preview's page: reload when the watched files change, fill in the slow checks.
"use strict";

const seen = document.body.dataset.generation;

async function watchForChanges() {
  for (;;) {
    try {
      const answer = await fetch(`/changes?seen=${encodeURIComponent(seen)}`, { cache: "no-store" });
      if (answer.ok) {
        const { generation } = await answer.json();
        if (generation !== seen) {
          location.reload();
          return;
        }
        continue; // no change within the server's wait: ask again
      }
    } catch (error) {
      // The server is stopped or restarting: try again in a second.
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function fillChecks() {
  const box = document.getElementById("checks");
  if (!box) return;
  try {
    const answer = await fetch(box.dataset.src, { cache: "no-store" });
    // The server renders the list (escaped) in the same origin.
    box.innerHTML = await answer.text();
  } catch (error) {
    box.textContent = "The checks could not be run: the preview server did not answer.";
  }
  box.setAttribute("aria-busy", "false");
}

fillChecks();
watchForChanges();
