// Draw each plotly figure of a notebook output with the local plotly.js; where JavaScript
// does not run, the block keeps its static image (see course_tools/book.py).
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Plotly === "undefined") return;
  for (const block of document.querySelectorAll(".course-plotly")) {
    const figure = JSON.parse(block.querySelector("script[type='application/json']").textContent);
    const chart = document.createElement("div");
    block.replaceChildren(chart);
    Plotly.newPlot(chart, figure.data, figure.layout, { responsive: true });
  }
});
