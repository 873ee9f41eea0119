// Card holders' photos: take one with the device's camera, and choose the part to keep.
//
// Progressive enhancement: without this script the page is a plain file upload and the
// server crops the photo about its centre. With it, a "Take a photo" button opens the camera
// (getUserMedia: the page's Permissions-Policy allows this site's own camera), and a taken or
// chosen photo is shown with a 3:4 frame that the pointer drags and resizes (the keyboard
// too: arrow keys move it, + and - resize it). The frame is sent as four whole numbers in the
// photo's own pixels (crop_x, crop_y, crop_width, crop_height); the server checks them.
// Everything is drawn on a canvas: no blob: or data: address is needed (the CSP stays strict).
(function () {
  "use strict";

  function each(root, selector, fn) {
    Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
  }

  function setup(picker) {
    var input = picker.querySelector("input[type=file]");
    var form = picker.closest("form");
    if (!input || !form || typeof window.createImageBitmap !== "function") {
      return;
    }
    var aspectW = Number(picker.dataset.aspectW || 3);
    var aspectH = Number(picker.dataset.aspectH || 4);
    var minHeight = Number(picker.dataset.minHeight || 240);
    var fields = {
      x: form.querySelector("[name=crop_x]"),
      y: form.querySelector("[name=crop_y]"),
      width: form.querySelector("[name=crop_width]"),
      height: form.querySelector("[name=crop_height]"),
    };
    var tools = picker.querySelector("[data-photo-tools]");
    var cameraButton = picker.querySelector("[data-photo-camera]");
    var cameraPanel = picker.querySelector("[data-photo-camera-panel]");
    var video = picker.querySelector("[data-photo-video]");
    var captureButton = picker.querySelector("[data-photo-capture]");
    var stopButton = picker.querySelector("[data-photo-camera-stop]");
    var cropPanel = picker.querySelector("[data-photo-crop]");
    var stage = picker.querySelector("[data-crop-stage]");
    var canvas = picker.querySelector("[data-crop-canvas]");
    var frame = picker.querySelector("[data-crop-frame]");
    var handle = picker.querySelector("[data-crop-handle]");
    var status = picker.querySelector("[data-photo-status]");

    var stream = null;
    var image = null; // the ImageBitmap, upright (the browser applies the EXIF orientation)
    var scale = 1; // canvas CSS pixels per image pixel
    var box = null; // the crop box in image pixels {x, y, w, h}

    function say(text) {
      if (status) {
        status.textContent = text || "";
      }
    }

    function clearCrop() {
      Object.keys(fields).forEach(function (k) {
        if (fields[k]) {
          fields[k].value = "";
        }
      });
    }

    function clamp(v, lo, hi) {
      return Math.max(lo, Math.min(hi, v));
    }

    function fit(b) {
      // Keep the box 3:4, at least the printable size, and inside the image.
      var maxH = Math.min(image.height, Math.floor((image.width * aspectH) / aspectW));
      var h = clamp(Math.round(b.h), Math.min(minHeight, maxH), maxH);
      var w = Math.round((h * aspectW) / aspectH);
      return {
        x: clamp(Math.round(b.x), 0, image.width - w),
        y: clamp(Math.round(b.y), 0, image.height - h),
        w: w,
        h: h,
      };
    }

    function draw() {
      if (!image) {
        return;
      }
      var width = stage.clientWidth || image.width;
      var maxHeight = Math.max(240, Math.round(window.innerHeight * 0.6));
      scale = Math.min(width / image.width, maxHeight / image.height, 1);
      canvas.width = Math.round(image.width * scale);
      canvas.height = Math.round(image.height * scale);
      canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
      place();
    }

    function place() {
      frame.style.left = box.x * scale + "px";
      frame.style.top = box.y * scale + "px";
      frame.style.width = box.w * scale + "px";
      frame.style.height = box.h * scale + "px";
      fields.x.value = String(box.x);
      fields.y.value = String(box.y);
      fields.width.value = String(box.w);
      fields.height.value = String(box.h);
    }

    function show(file) {
      clearCrop();
      cropPanel.hidden = true;
      image = null;
      if (!file) {
        return;
      }
      window.createImageBitmap(file).then(
        function (bitmap) {
          image = bitmap;
          var h = Math.min(image.height, Math.floor((image.width * aspectH) / aspectW));
          var w = Math.round((h * aspectW) / aspectH);
          box = fit({ x: (image.width - w) / 2, y: (image.height - h) / 2, w: w, h: h });
          cropPanel.hidden = false;
          draw();
          say(picker.dataset.textCropReady || "");
        },
        function () {
          // Not a picture the browser can show: the server will say what is wrong with it.
          say("");
        }
      );
    }

    input.addEventListener("change", function () {
      show(input.files && input.files[0]);
    });
    window.addEventListener("resize", draw);

    // Dragging the frame (or, by its handle, resizing it) with a mouse, pen or finger.
    var drag = null;
    function start(event, mode) {
      if (!image) {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
      frame.setPointerCapture(event.pointerId);
      drag = { mode: mode, px: event.clientX, py: event.clientY, box: box };
    }
    frame.addEventListener("pointerdown", function (event) {
      start(event, "move");
    });
    handle.addEventListener("pointerdown", function (event) {
      start(event, "resize");
    });
    frame.addEventListener("pointermove", function (event) {
      if (!drag) {
        return;
      }
      var dx = (event.clientX - drag.px) / scale;
      var dy = (event.clientY - drag.py) / scale;
      var b = drag.box;
      if (drag.mode === "move") {
        box = fit({ x: b.x + dx, y: b.y + dy, w: b.w, h: b.h });
      } else {
        var h = Math.max(b.h + dy, ((b.w + dx) * aspectH) / aspectW);
        h = Math.min(h, image.height - b.y, ((image.width - b.x) * aspectH) / aspectW);
        box = fit({ x: b.x, y: b.y, w: (h * aspectW) / aspectH, h: h });
      }
      place();
    });
    function end() {
      drag = null;
    }
    frame.addEventListener("pointerup", end);
    frame.addEventListener("pointercancel", end);
    frame.addEventListener("click", function (event) {
      event.preventDefault(); // the frame is a button: never submit the form
    });

    frame.addEventListener("keydown", function (event) {
      if (!image) {
        return;
      }
      var step = Math.max(1, Math.round((event.shiftKey ? 0.1 : 0.02) * image.width));
      var b = box;
      var handled = true;
      if (event.key === "ArrowLeft") {
        box = fit({ x: b.x - step, y: b.y, w: b.w, h: b.h });
      } else if (event.key === "ArrowRight") {
        box = fit({ x: b.x + step, y: b.y, w: b.w, h: b.h });
      } else if (event.key === "ArrowUp") {
        box = fit({ x: b.x, y: b.y - step, w: b.w, h: b.h });
      } else if (event.key === "ArrowDown") {
        box = fit({ x: b.x, y: b.y + step, w: b.w, h: b.h });
      } else if (event.key === "+" || event.key === "=" || event.key === "-") {
        var factor = event.key === "-" ? 0.95 : 1.05;
        var h = b.h * factor;
        // Resize about the centre.
        box = fit({
          x: b.x + (b.w - (h * aspectW) / aspectH) / 2,
          y: b.y + (b.h - h) / 2,
          w: (h * aspectW) / aspectH,
          h: h,
        });
      } else {
        handled = false;
      }
      if (handled) {
        event.preventDefault();
        place();
      }
    });

    // The camera, where the browser has one and the page is served securely.
    function stopCamera() {
      if (stream) {
        stream.getTracks().forEach(function (track) {
          track.stop();
        });
        stream = null;
      }
      video.srcObject = null;
      cameraPanel.hidden = true;
      cameraButton.hidden = false;
    }

    var canCamera =
      window.isSecureContext &&
      navigator.mediaDevices &&
      typeof navigator.mediaDevices.getUserMedia === "function" &&
      typeof window.DataTransfer === "function";
    if (canCamera && tools) {
      tools.hidden = false;
      // "Take the photo" waits for the camera's first frame: a click before it would take
      // nothing (the video has no size yet).
      video.addEventListener("loadeddata", function () {
        captureButton.disabled = !video.videoWidth;
      });
      cameraButton.addEventListener("click", function () {
        say("");
        captureButton.disabled = true;
        navigator.mediaDevices
          .getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 } }, audio: false })
          .then(function (s) {
            stream = s;
            video.srcObject = s;
            cameraPanel.hidden = false;
            cameraButton.hidden = true;
            return video.play();
          })
          .catch(function () {
            stopCamera();
            say(picker.dataset.textNoCamera || "");
          });
      });
      stopButton.addEventListener("click", stopCamera);
      captureButton.addEventListener("click", function () {
        if (!stream || !video.videoWidth) {
          return;
        }
        var shot = document.createElement("canvas");
        shot.width = video.videoWidth;
        shot.height = video.videoHeight;
        shot.getContext("2d").drawImage(video, 0, 0);
        stopCamera();
        shot.toBlob(
          function (blob) {
            if (!blob) {
              return;
            }
            var file = new File([blob], "camera.jpg", { type: "image/jpeg" });
            var transfer = new DataTransfer();
            transfer.items.add(file);
            input.files = transfer.files;
            show(file);
          },
          "image/jpeg",
          0.92
        );
      });
    }
  }

  each(document, "[data-photo-picker]", setup);
})();
