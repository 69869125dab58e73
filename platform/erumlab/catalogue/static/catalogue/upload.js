// Resumable, chunked uploads with a progress bar, through the REST API:
// POST /api/v1/uploads/ reserves the file (quota and name checked first),
// PUT sends chunks with Content-Range, GET tells where to resume,
// POST .../complete/ checks size and SHA-256 and records the file.
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )erumlab_csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, url, body, headers) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: Object.assign({ "X-CSRFToken": csrfToken(), Accept: "application/json" }, headers || {}),
      body: body,
    });
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    return { status: response.status, ok: response.ok, data: data };
  }

  function explain(data) {
    if (!data) return "the server gave no reason";
    if (typeof data === "string") return data;
    return Object.entries(data).map(([key, value]) =>
      (key === "detail" ? "" : key + ": ") + (Array.isArray(value) ? value.join(" ") : value)).join("; ");
  }

  async function sha256(file) {
    // Web Crypto digests a whole buffer: declare checksums for files up to 512 MB;
    // larger ones are checked by the server alone.
    if (!window.crypto || !crypto.subtle || file.size > 512 * 1024 * 1024) return "";
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  function resumeKey(root, file) {
    return ["erumlab-upload", root.dataset.dataset, root.dataset.version, file.name, file.size, file.lastModified].join(":");
  }

  async function uploadOne(root, file, row) {
    const bar = row.querySelector("progress");
    const status = row.querySelector(".upload-status");
    const chunk = parseInt(root.dataset.chunk, 10) || 8 * 1000 * 1000;
    const base = root.dataset.uploadsUrl;
    let id = localStorage.getItem(resumeKey(root, file));
    let offset = 0;
    if (id) {
      const existing = await api("GET", base + id + "/");
      if (existing.ok) { offset = existing.data.received; } else { id = null; }
    }
    if (!id) {
      status.textContent = "checking…";
      const created = await api("POST", base, JSON.stringify({
        dataset: root.dataset.dataset, version: parseInt(root.dataset.version, 10),
        name: file.name, size: file.size, sha256: await sha256(file),
      }), { "Content-Type": "application/json" });
      if (!created.ok) throw new Error(explain(created.data));
      id = created.data.id;
      localStorage.setItem(resumeKey(root, file), id);
    }
    while (offset < file.size) {
      const end = Math.min(offset + chunk, file.size);
      const sent = await api("PUT", base + id + "/", file.slice(offset, end), {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": "attachment; filename=chunk",
        "Content-Range": "bytes " + offset + "-" + (end - 1) + "/" + file.size,
      });
      if (sent.status === 409) { offset = sent.data.received; continue; }
      if (!sent.ok) throw new Error(explain(sent.data));
      offset = sent.data.received;
      bar.value = Math.round((100 * offset) / file.size);
      status.textContent = bar.value + " %";
    }
    status.textContent = "verifying…";
    const done = await api("POST", base + id + "/complete/");
    localStorage.removeItem(resumeKey(root, file));
    if (!done.ok) throw new Error(explain(done.data));
    bar.value = 100;
    status.textContent = "done";
  }

  document.addEventListener("DOMContentLoaded", function () {
    const root = document.getElementById("uploader");
    if (!root) return;
    const input = document.getElementById("upload-files");
    const list = document.getElementById("upload-list");
    document.getElementById("upload-start").addEventListener("click", async function () {
      let failed = false;
      for (const file of input.files) {
        const row = document.createElement("li");
        row.innerHTML = '<span class="upload-name"></span> <progress max="100" value="0" class="meter"></progress> <span class="upload-status">waiting</span>';
        row.querySelector(".upload-name").textContent = file.name;
        row.querySelector("progress").setAttribute("aria-label", "Upload of " + file.name);
        list.appendChild(row);
        try {
          await uploadOne(root, file, row);
        } catch (error) {
          failed = true;
          row.querySelector(".upload-status").textContent = "failed: " + error.message;
          row.classList.add("upload-failed");
        }
      }
      // Let the finished bars be seen for a moment, then show the files.
      if (!failed) setTimeout(function () { window.location.reload(); }, 800);
    });
  });
})();
