// Pan and zoom for the lineage graph: changes the SVG viewBox only. No network, no inline code.
(function () {
  "use strict";
  var svg = document.getElementById("lineage-svg");
  if (!svg) { return; }
  var fullW = parseFloat(svg.getAttribute("data-width")) || 800;
  var fullH = parseFloat(svg.getAttribute("data-height")) || 600;
  var view = { x: 0, y: 0, w: fullW, h: fullH };

  function apply() {
    svg.setAttribute("viewBox", view.x + " " + view.y + " " + view.w + " " + view.h);
  }
  function box() { return svg.getBoundingClientRect(); }
  function fit(whole) {
    // whole (the "fit" button, the 0 key): the whole graph, however small its labels get.  Otherwise
    // (opening the page, resizing the window): the whole graph when it fits at a readable scale, else
    // readable, around the node you started from
    var r = box();
    if (r.width <= 0 || r.height <= 0) { return; }
    var scale = Math.min(r.width / fullW, r.height / fullH);
    scale = whole ? Math.min(scale, 1.25) : Math.min(Math.max(scale, 0.8), 1.25);
    var w = r.width / scale, h = r.height / scale;
    var cx = fullW / 2, cy = fullH / 2;
    if (w < fullW || h < fullH) {
      var root = svg.querySelector(".node-root rect");
      if (root) {
        cx = parseFloat(root.getAttribute("x")) + parseFloat(root.getAttribute("width")) / 2;
        cy = parseFloat(root.getAttribute("y")) + parseFloat(root.getAttribute("height")) / 2;
      }
    }
    view = { x: cx - w / 2, y: cy - h / 2, w: w, h: h };
    apply();
  }
  function zoom(factor, cx, cy) {
    var nw = Math.min(Math.max(view.w * factor, 80), Math.max(fullW, fullH) * 6);
    var f = nw / view.w;
    if (cx === undefined) { cx = view.x + view.w / 2; cy = view.y + view.h / 2; }
    view = { x: cx - (cx - view.x) * f, y: cy - (cy - view.y) * f, w: view.w * f, h: view.h * f };
    apply();
  }
  function toGraph(ev) {
    var r = box();
    return { x: view.x + (ev.clientX - r.left) / r.width * view.w, y: view.y + (ev.clientY - r.top) / r.height * view.h };
  }

  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var p = toGraph(ev);
    zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, p.x, p.y);
  }, { passive: false });

  var drag = null;
  svg.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0 || (ev.target.closest && ev.target.closest("a"))) { return; }
    drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y };
    svg.setPointerCapture(ev.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", function (ev) {
    if (!drag) { return; }
    var r = box();
    view.x = drag.vx - (ev.clientX - drag.x) / r.width * view.w;
    view.y = drag.vy - (ev.clientY - drag.y) / r.height * view.h;
    apply();
  });
  function stop() { drag = null; svg.classList.remove("dragging"); }
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);

  svg.addEventListener("keydown", function (ev) {
    var step = view.w * 0.1;
    var handled = true;
    switch (ev.key) {
      case "+": case "=": zoom(1 / 1.25); break;
      case "-": case "_": zoom(1.25); break;
      case "0": fit(true); break;
      case "ArrowLeft": view.x -= step; apply(); break;
      case "ArrowRight": view.x += step; apply(); break;
      case "ArrowUp": view.y -= step; apply(); break;
      case "ArrowDown": view.y += step; apply(); break;
      default: handled = false;
    }
    if (handled) { ev.preventDefault(); }
  });
  // keep a focused node in view when tabbing through the graph
  svg.addEventListener("focusin", function (ev) {
    var rect = ev.target.querySelector && ev.target.querySelector("rect, circle");
    if (!rect) { return; }
    var b = rect.getBBox();
    if (b.x < view.x || b.y < view.y || b.x + b.width > view.x + view.w || b.y + b.height > view.y + view.h) {
      view.x = b.x + b.width / 2 - view.w / 2;
      view.y = b.y + b.height / 2 - view.h / 2;
      apply();
    }
  });

  // follow dependencies: pointing at (or focusing) a node highlights its edges and dims the rest
  var edges = svg.querySelectorAll("path.edge");
  function highlight(key) {
    svg.classList.toggle("focusing", key !== null);
    for (var i = 0; i < edges.length; i++) {
      var e = edges[i];
      var on = key !== null && (e.getAttribute("data-s") === key || e.getAttribute("data-t") === key);
      e.classList.toggle("hl", on);
    }
  }
  function nodeKey(target) {
    var g = target && target.closest ? target.closest("g.node") : null;
    return g ? g.getAttribute("data-key") : null;
  }
  svg.addEventListener("mouseover", function (ev) { highlight(nodeKey(ev.target)); });
  svg.addEventListener("mouseleave", function () { highlight(null); });
  svg.addEventListener("focusin", function (ev) { highlight(nodeKey(ev.target)); });

  var tools = document.getElementById("graph-tools");
  if (tools) {
    tools.addEventListener("click", function (ev) {
      var what = ev.target.getAttribute && ev.target.getAttribute("data-zoom");
      if (what === "in") { zoom(1 / 1.25); } else if (what === "out") { zoom(1.25); } else if (what === "fit") { fit(true); }
    });
  }
  window.addEventListener("resize", function () { fit(false); });
  fit(false);
}());
