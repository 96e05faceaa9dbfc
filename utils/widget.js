// Front end of utils/widget.py: a canvas that shows the image, the current mask and the prompts.
// Left click: foreground point. Right click or shift-click: background point.
// Drag (more than DRAG_PX screen pixels): a box. Every action is sent to Python as a custom
// message in image pixels; Python answers by updating the synced traits, which are redrawn here.

const DRAG_PX = 5;

function imagePoint(canvas, event) {
  // The canvas may be shown scaled: convert screen pixels to image pixels.
  const rect = canvas.getBoundingClientRect();
  return [
    (event.clientX - rect.left) * (canvas.width / rect.width),
    (event.clientY - rect.top) * (canvas.height / rect.height),
  ];
}

function drawStar(ctx, x, y, radius, color) {
  ctx.beginPath();
  for (let i = 0; i < 10; i++) {
    const r = i % 2 === 0 ? radius : radius / 2.5;
    const angle = (Math.PI / 5) * i - Math.PI / 2;
    ctx.lineTo(x + r * Math.cos(angle), y + r * Math.sin(angle));
  }
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
  ctx.lineWidth = radius / 6;
  ctx.strokeStyle = "white";
  ctx.stroke();
}

function render({ model, el }) {
  el.classList.add("sam-widget");
  el.setAttribute("data-jp-suppress-context-menu", "");
  const canvas = document.createElement("canvas");
  canvas.className = "sam-canvas";
  const toolbar = document.createElement("div");
  toolbar.className = "sam-toolbar";
  const status = document.createElement("span");
  status.className = "sam-status";
  const buttons = {};
  for (const [action, label] of [["undo", "Undo"], ["reset", "Reset"], ["cycle", "Next mask"]]) {
    const button = document.createElement("button");
    button.textContent = label;
    button.className = `sam-${action}`;
    button.addEventListener("click", (event) => send({ type: action }, event));
    buttons[action] = button;
    toolbar.appendChild(button);
  }
  const upload = document.createElement("input");
  upload.type = "file";
  upload.accept = "image/*";
  upload.className = "sam-upload";
  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (file) send({ type: "upload", name: file.name }, null, [await file.arrayBuffer()]);
    upload.value = "";
  });
  toolbar.append(upload, status);
  el.append(toolbar, canvas);

  function send(message, event, buffers) {
    // when the user acted (the event's own time stamp, on performance.now()'s clock), for latency measurements
    el.dataset.sentAt = String(event ? event.timeStamp : performance.now());
    model.send(message, undefined, buffers);
  }

  const image = new Image();
  const mask = document.createElement("canvas"); // the mask, painted from its bits at the size it was sent
  let dragStart = null;
  let dragNow = null;

  function redraw() {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0);
    if (model.get("mask_shape").length === 2) {
      ctx.drawImage(mask, 0, 0, canvas.width, canvas.height); // the mask may be sent downscaled
    }
    const radius = Math.max(8, canvas.width / 60);
    const points = model.get("points");
    const labels = model.get("labels");
    points.forEach(([x, y], i) => drawStar(ctx, x, y, radius, labels[i] === 1 ? "#2ca02c" : "#d62728"));
    const box = dragStart && dragNow ? [...dragStart, ...dragNow] : model.get("box");
    if (box && box.length === 4) {
      ctx.lineWidth = Math.max(2, canvas.width / 400);
      ctx.strokeStyle = "#2ca02c";
      ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
    }
    const scores = model.get("scores");
    const candidate = model.get("candidate");
    const message = model.get("message");
    status.textContent = message
      ? message
      : scores.length
        ? `mask ${candidate + 1}/${scores.length}, score ${scores[candidate].toFixed(3)}`
        : "click: foreground, right/shift-click: background, drag: box";
  }

  function loadImage() {
    image.onload = () => {
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      scheduleRedraw();
    };
    image.src = model.get("image_data");
  }
  function paintMask() {
    // mask_bits: one bit a pixel, rows of mask_shape[1] pixels, most significant bit first (numpy's packbits).
    el.dataset.maskArrivedAt = String(performance.now());
    const shape = model.get("mask_shape");
    if (shape.length === 2) {
      const [height, width] = shape;
      const view = model.get("mask_bits"); // a DataView, possibly into a larger buffer
      const bits = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      mask.width = width;
      mask.height = height;
      const overlay = new ImageData(width, height);
      const pixels = new Uint32Array(overlay.data.buffer);
      const [r, g, b, a] = model.get("mask_rgba");
      const colour = new Uint32Array(new Uint8ClampedArray([r, g, b, a]).buffer)[0];
      for (let i = 0; i < width * height; i++) {
        if (bits[i >> 3] & (128 >> (i & 7))) pixels[i] = colour;
      }
      mask.getContext("2d").putImageData(overlay, 0, 0);
    }
    maskPainted = true;
    scheduleRedraw();
  }

  // One message from Python changes several traits, and a drag fires many mousemoves a frame:
  // each asks for a redraw, and the canvas is redrawn once, just before the browser's next frame.
  let redrawScheduled = false;
  let maskPainted = false;
  function scheduleRedraw() {
    if (redrawScheduled) return;
    redrawScheduled = true;
    requestAnimationFrame(() => {
      redrawScheduled = false;
      redraw();
      if (maskPainted) {
        maskPainted = false;
        // Counts repaints that show a new mask (or its removal): tests and latency measurements wait on it,
        // and read when each action was sent, its mask arrived and was shown (performance.now(), ms).
        el.dataset.maskShownAt = String(performance.now());
        el.dataset.maskShown = String(Number(el.dataset.maskShown || 0) + 1);
      }
    });
  }

  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.addEventListener("mousedown", (event) => {
    event.preventDefault();
    dragStart = imagePoint(canvas, event);
    dragStart.screen = [event.clientX, event.clientY];
    dragStart.negative = event.button === 2 || event.shiftKey;
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!dragStart) return;
    const moved = Math.hypot(event.clientX - dragStart.screen[0], event.clientY - dragStart.screen[1]);
    if (moved > DRAG_PX) {
      dragNow = imagePoint(canvas, event);
      scheduleRedraw();
    }
  });
  window.addEventListener("mouseup", (event) => {
    if (!dragStart) return;
    const start = dragStart;
    const end = imagePoint(canvas, event);
    const moved = Math.hypot(event.clientX - start.screen[0], event.clientY - start.screen[1]);
    dragStart = null;
    dragNow = null;
    if (moved > DRAG_PX) {
      send({ type: "box", box: [Math.min(start[0], end[0]), Math.min(start[1], end[1]),
                                      Math.max(start[0], end[0]), Math.max(start[1], end[1])] }, event);
    } else {
      send({ type: "point", x: start[0], y: start[1], label: start.negative ? 0 : 1 }, event);
    }
  });

  model.on("change:image_data", loadImage);
  model.on("change:mask_version", paintMask); // bits, shape and version arrive in one message
  for (const name of ["points", "labels", "box", "scores", "candidate", "message"]) {
    model.on(`change:${name}`, scheduleRedraw);
  }
  loadImage();
  paintMask();
}

export default { render };
