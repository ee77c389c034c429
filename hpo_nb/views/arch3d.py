"""Draw a laid-out network (``analysis.layout.Scene``) in 3D: pythreejs in a live notebook,
Plotly where no widget front end exists (static HTML, nbviewer, GitHub). Geometry, colours and
labels all come from the scene; this module only turns them into widgets or traces."""

from __future__ import annotations

import html
import math
import os
from typing import Any

import ipywidgets as widgets

from ..analysis.layout import LABEL_HEIGHT, Block, Scene, label_width, layout
from ..errors import ConfigError
from . import in_notebook

BACKENDS = ("auto", "pythreejs", "plotly")
STATIC_ENV = "HPO_NB_STATIC"  # set to 1 to get static (Plotly) figures, e.g. before nbconvert
BACKGROUND = "#f7f7f7"
FOV = 40.0
ROTATE_SPEED = 0.3  # three.js default 1.0 turns ~85 degrees for a 100 px drag on a 420 px canvas
MUTED = "var(--jp-ui-font-color2, #616161)"
# The canvas has a fixed size in pixels; in a narrower output it scales down (same aspect) rather
# than pushing its details panel out of view. Flex items must be allowed to shrink below it.
_FIT_CSS = ("<style>.hpo-nb-3d canvas{max-width:100%;height:auto !important}"
            ".hpo-nb-3d .hpo-nb-canvas{min-width:0;max-width:100%}</style>")


def choose_backend(backend: str = "auto") -> str:
    """``auto``: pythreejs in a live Jupyter kernel, Plotly when rendering statically (no kernel,
    ``HPO_NB_STATIC=1``, or pythreejs missing)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}.")
    if backend != "auto":
        return backend
    if os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes"):
        return "plotly"
    try:
        import pythreejs  # noqa: F401
    except ImportError:
        return "plotly"
    return "pythreejs" if in_notebook() else "plotly"


def draw(scene: Scene, backend: str = "auto", title: str = "", **kwargs: Any) -> Any:
    return (view_3d if choose_backend(backend) == "pythreejs" else figure_3d)(scene, title=title, **kwargs)


def trial_scene(result: Any) -> Scene:
    """The scene of a stored trial (a ``records.TrialResult``), from its metadata only."""
    if not result.architecture:
        raise ConfigError(f"trial {result.number} ({result.state}) has no architecture metadata: it ended before "
                          "its model was built. Pick a complete trial, e.g. exp.best.number.")
    return layout(result.architecture)


def trial_title(result: Any) -> str:
    acc = "" if result.accuracy is None else f" · val accuracy {result.accuracy:.3f}"
    arch = result.architecture
    return (f"trial {result.number} · {arch.get('model_type', 'model')} · "
            f"{int(arch.get('total_params') or 0):,} parameters{acc}")


def show_trial(result: Any, backend: str = "auto") -> Any:
    """``exp.architecture_3d``: one stored trial in 3D."""
    return draw(trial_scene(result), backend, title=trial_title(result))


def show_pair(a: Any, b: Any, backend: str = "auto") -> Any:
    """``exp.compare_architectures``: two stored trials side by side, at the same scale."""
    return draw_pair(trial_scene(a), trial_scene(b), (trial_title(a), trial_title(b)), backend)


def draw_pair(a: Scene, b: Scene, titles: tuple[str, str], backend: str = "auto") -> Any:
    """Two networks side by side, at the same scale."""
    if choose_backend(backend) == "plotly":
        return figure_pair(a, b, titles)
    reach = tuple(max(i, j) for i, j in zip(a.reach, b.reach))
    views = [view_3d(s, title=t, width=480, height=380, reach=reach, legend=False) for s, t in zip((a, b), titles)]
    legend = {**a.legend, **b.legend}
    return widgets.VBox([widgets.HBox(views, layout=widgets.Layout(flex_flow="row wrap")),
                         widgets.HTML(legend_html(legend))])


# ---------------------------------------------------------------------------- pythreejs


class Architecture3D(widgets.VBox):
    """The 3D view: ``renderer`` (pythreejs, orbit controls, click picking), a legend and a
    details panel; ``select(name)`` shows a layer's details as a click on it does."""

    def __init__(self, scene: Scene, renderer: Any, picker: Any, meshes: dict[str, Any], title: str,
                 legend: bool, orbit: Any = None) -> None:
        self.layout_scene = scene
        self.renderer = renderer
        self.picker = picker
        self.meshes = meshes
        self.orbit = orbit
        self.details = widgets.HTML(_details_html(None), layout=widgets.Layout(flex="0 1 200px"))
        self.reset_button = widgets.Button(description="Reset view", icon="refresh",
                                           tooltip="Back to the first camera position (drag: orbit, wheel: zoom, "
                                                   "right-drag: pan)",
                                           layout=widgets.Layout(width="auto")).add_class("hpo-nb-reset-view")
        self.reset_button.on_click(lambda _button: self.reset_view())
        header = widgets.HTML(_FIT_CSS + (f"<b>{html.escape(title)}</b>" if title else ""),
                              layout=widgets.Layout(flex="1 1 auto"))
        renderer.layout.min_width = "0"
        renderer.layout.max_width = "100%"
        renderer.add_class("hpo-nb-canvas")
        parts: list[Any] = [
            widgets.HBox([header, self.reset_button], layout=widgets.Layout(align_items="center",
                                                                          flex_flow="row wrap")),
            widgets.HBox([renderer, self.details], layout=widgets.Layout(flex_flow="row wrap", grid_gap="4px 8px",
                                                                         align_items="flex-start")),
        ]
        if legend:
            parts.append(widgets.HTML(legend_html(scene.legend)))
        # As wide as the canvas and its details panel (the legend wraps under them), never wider
        # than the output: beside it there is room for what the caller puts there.
        super().__init__(parts, layout=widgets.Layout(width=f"{int(renderer.width) + 224}px", max_width="100%"))
        self.add_class("hpo-nb-3d")
        picker.observe(self._on_pick, names="object")

    def reset_view(self) -> None:
        """Put the camera back where it started (three.js ``OrbitControls.reset``)."""
        if self.orbit is not None:
            self.orbit.reset()

    def select(self, name: str) -> Block:
        block = self.layout_scene.block(name)
        self.details.value = _details_html(block)
        return block

    def _on_pick(self, change: dict[str, Any]) -> None:
        name = getattr(change.get("new"), "name", "")
        if name in self.meshes:
            self.select(name)


def view_3d(scene: Scene, title: str = "", width: int = 720, height: int = 420,
            reach: tuple[float, float, float] | None = None,
            legend: bool = True) -> Architecture3D:
    """An ``Architecture3D`` widget (an ipywidgets VBox around a pythreejs ``Renderer``)."""
    import numpy as np
    import pythreejs as p3

    meshes: dict[str, Any] = {}
    solids, edges, labels = [], [], []
    for b in scene.blocks:
        geometry = p3.BoxGeometry(width=b.size[0], height=b.size[1], depth=b.size[2])
        mesh = p3.Mesh(geometry, p3.MeshLambertMaterial(color=b.color), position=list(b.center), name=b.name)
        meshes[b.name] = mesh
        solids.append(mesh)
        edges.append(p3.LineSegments(p3.EdgesGeometry(geometry), p3.LineBasicMaterial(color="#333333"),
                                     position=list(b.center)))
        labels.append(_label_sprite(b))
    points = np.array([p for seg in scene.connectors for p in seg], dtype="float32").reshape(-1, 3)
    objects: list[Any] = [p3.Group(children=solids, name="layers"), *edges, *labels]
    if len(points):
        objects.append(p3.LineSegments(p3.BufferGeometry(attributes={"position": p3.BufferAttribute(points)}),
                                       p3.LineBasicMaterial(color="#555555", linewidth=2)))
    reach = reach or scene.reach
    r = max(1.0, *reach)
    camera = p3.PerspectiveCamera(position=camera_position(reach, width / height), up=[0, 1, 0], fov=FOV,
                                  aspect=width / height, near=0.01 * r, far=20 * r, children=[_headlight()])
    world = p3.Scene(children=[*objects, camera, p3.AmbientLight(color="#ffffff", intensity=0.6)],
                     background=BACKGROUND)
    picker = p3.Picker(controlling=objects[0], event="click")
    renderer = p3.Renderer(camera=camera, scene=world, controls=[orbit_controls(camera), picker], width=width,
                           height=height, antialias=True)
    return Architecture3D(scene, renderer, picker, meshes, title, legend, orbit=renderer.controls[0])


def orbit_controls(camera: Any) -> Any:
    """Orbit controls that keep the model in view: a third of three.js's rotation speed, the
    camera kept in front of the model (within 80 degrees left or right, 18 to 162 degrees from
    straight above) and between a quarter and three times its first distance."""
    import pythreejs as p3

    distance = math.dist(camera.position, (0.0, 0.0, 0.0))
    return p3.OrbitControls(controlling=camera, target=[0, 0, 0], rotateSpeed=ROTATE_SPEED, zoomSpeed=0.6,
                            panSpeed=0.5, minAzimuthAngle=-math.radians(80), maxAzimuthAngle=math.radians(80),
                            minPolarAngle=math.radians(18), maxPolarAngle=math.radians(162),
                            minDistance=0.25 * distance, maxDistance=3.0 * distance)


def _headlight() -> Any:
    """A light that moves with the camera. Its shadow is given explicitly (shadows stay off): left
    unset, pythreejs 2.4 sends an uninitialized reference that its front end calls ``.on`` on,
    logging "Error setting state: t.on is not a function" for every view."""
    import pythreejs as p3

    shadow = p3.DirectionalLightShadow(camera=p3.OrthographicCamera(-5, 5, 5, -5, 0.5, 500))
    return p3.DirectionalLight(color="white", position=[3, 5, 1], intensity=0.6, shadow=shadow)


def camera_position(reach: tuple[float, float, float], aspect: float) -> list[float]:
    """Front, slightly right and above, just far enough that everything within ``reach`` (of
    the origin, per axis) fits the view, the parts nearest to the camera included."""
    half_height = math.radians(FOV / 2)
    half_width = math.atan(math.tan(half_height) * aspect)
    rx, ry, rz = reach
    distance = 1.2 * max(rx / math.tan(half_width), ry / math.tan(half_height), 1.0) + 1.5 * rz
    direction = (0.06, 0.33, 0.94)  # about unit length
    return [distance * d for d in direction]


def _label_sprite(b: Block) -> Any:
    import pythreejs as p3

    text = b.label
    texture = p3.TextTexture(string=text, size=48, color="#222222", squareTexture=False)
    return p3.Sprite(material=p3.SpriteMaterial(map=texture, transparent=True, depthTest=False),
                     position=list(b.label_at), scale=[label_width(text), LABEL_HEIGHT, 1])


def legend_html(legend: dict[str, str]) -> str:
    items = "".join(
        f'<span style="display:inline-block;margin-right:12px"><span style="display:inline-block;width:12px;'
        f'height:12px;background:{c};border:1px solid #333;vertical-align:middle"></span> {html.escape(t)}</span>'
        for t, c in legend.items())
    return f'<div class="hpo-nb-legend">{items}</div>'


def _details_html(block: Block | None) -> str:
    if block is None:
        return f'<div class="hpo-nb-layer-details" style="min-width:200px;color:{MUTED}">click a layer for details</div>'
    rows = "".join(f"<tr><td style='padding-right:8px;color:{MUTED}'>{html.escape(str(k))}</td>"
                   f"<td>{html.escape(v)}</td></tr>"
                   for k, v in (line.split(": ", 1) for line in block.details_text().split("\n")))
    return (f'<div class="hpo-nb-layer-details" style="min-width:200px"><b style="color:{block.color}">■</b> '
            f"<b>{html.escape(block.name)}</b><table>{rows}</table></div>")


# ---------------------------------------------------------------------------- plotly

_I = [0, 0, 4, 4, 0, 0, 1, 1, 0, 0, 3, 3]
_J = [1, 2, 5, 6, 1, 5, 2, 6, 3, 7, 2, 6]
_K = [2, 3, 6, 7, 5, 4, 6, 5, 7, 4, 6, 7]


def _box(b: Block) -> tuple[list[float], list[float], list[float]]:
    (cx, cy, cz), (sx, sy, sz) = b.center, b.size
    xs = [cx - sx / 2, cx + sx / 2, cx + sx / 2, cx - sx / 2] * 2
    ys = [cy - sy / 2] * 4 + [cy + sy / 2] * 4
    zs = [cz - sz / 2, cz - sz / 2, cz + sz / 2, cz + sz / 2] * 2
    return _to_plotly(xs, ys, zs)


def _to_plotly(xs: list[float], ys: list[float], zs: list[float]) -> tuple[list[float], list[float], list[float]]:
    """Scene (y up, front +z) -> Plotly (z up, front -y): a rotation about x, not a mirror."""
    return list(xs), [-z for z in zs], list(ys)


def _traces(scene: Scene, shown: set[str], scene_id: str = "scene") -> list[Any]:
    import plotly.graph_objects as go

    traces: list[Any] = []
    for b in scene.blocks:
        xs, ys, zs = _box(b)
        traces.append(go.Mesh3d(
            x=xs, y=ys, z=zs, i=_I, j=_J, k=_K, color=b.color, opacity=1.0, flatshading=True,
            name=b.type, legendgroup=b.type, showlegend=b.type not in shown,
            hovertext=b.details_text("<br>"), hoverinfo="text", scene=scene_id,
        ))
        shown.add(b.type)
    xs, ys, zs = [], [], []
    for (a, c) in scene.connectors:
        px, py, pz = _to_plotly([a[0], c[0]], [a[1], c[1]], [a[2], c[2]])
        xs += [*px, None]
        ys += [*py, None]
        zs += [*pz, None]
    if xs:
        traces.append(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=dict(color="#555555", width=4),
                                   hoverinfo="skip", showlegend=False, scene=scene_id))
    lx, ly, lz = _to_plotly(*([b.label_at[i] for b in scene.blocks] for i in range(3)))
    traces.append(go.Scatter3d(
        x=lx, y=ly, z=lz, mode="text", text=[b.label for b in scene.blocks],
        textfont=dict(size=10, color="#222222"), hoverinfo="skip", showlegend=False, scene=scene_id,
    ))
    return traces


def _scene_layout(*scenes: Scene) -> dict[str, Any]:
    """Axes hidden; the same ranges and aspect for all ``scenes`` (so a pair shares one scale).
    Seen from the front (scene +z, Plotly -y), data flowing left to right."""
    rx, ry, rz = (max(s.reach[i] for s in scenes) + 0.3 for i in range(3))
    axes = {name: dict(visible=False, showbackground=False, range=[-r, r])
            for name, r in (("xaxis", rx), ("yaxis", rz), ("zaxis", ry))}
    return dict(**axes, aspectmode="manual", aspectratio=dict(x=1.0, y=rz / rx, z=ry / rx), bgcolor=BACKGROUND,
                camera=dict(eye=dict(x=0.15, y=-1.25, z=0.55), up=dict(x=0, y=0, z=1)))


def figure_3d(scene: Scene, title: str = "", width: int = 900, height: int = 480, **_: Any) -> Any:
    """The same scene as a Plotly 3D figure (hover a layer for its details; drag to orbit)."""
    import plotly.graph_objects as go

    fig = go.Figure(_traces(scene, set()))
    fig.update_layout(title=title or None, scene=_scene_layout(scene), width=width, height=height,
                      legend=dict(title="layer type"), margin=dict(l=0, r=0, t=50 if title else 10, b=0))
    return fig


def figure_pair(a: Scene, b: Scene, titles: tuple[str, str]) -> Any:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]], subplot_titles=titles,
                        horizontal_spacing=0.02)
    shown: set[str] = set()
    for col, (s, scene_id) in enumerate(((a, "scene"), (b, "scene2")), start=1):
        for trace in _traces(s, shown, scene_id):
            fig.add_trace(trace, row=1, col=col)
    fig.update_layout(scene=_scene_layout(a, b), scene2=_scene_layout(a, b), width=1100, height=460,
                      legend=dict(title="layer type"), margin=dict(l=0, r=0, t=50, b=0))
    return fig
