"""PLCopen TC6 XML v2.01 (namespace http://www.plcopen.org/xml/tc6_0201): export and import of LD programs.

`to_plcopen` writes a complete project in the element order of the TC6 schema, with Beremiz's
conventions so that Beremiz and OpenPLC Editor open it and draw it: every element has a localId, a size and
a position (from `layout`); a connection names its source by refLocalId (and formalParameter="Q" when the
source is a block), lists the wire's points from its destination back to its source, and no formalParameter
for a power-rail source (Beremiz finds the rail's connection point by position, and by name when one is
given, and a rail's connection points are all named ""); timer presets and counter PV / R / LD inputs are
in-variables; the instances section runs the program in one task, as Beremiz writes it.

`from_plcopen` reads the LD body of a program POU written by such editors into the graph form (one rung per
connected group of contacts, blocks and coils, ordered top to bottom) and then `graph.from_graph`. It
accepts several connections in one connectionPointIn (OR), coils chained in series, block outputs named by
formalParameter, one left / right rail shared by all rungs (OpenPLC) and EN / ENO wired straight to the
rails. Anything else raises ProgramError with one line naming the file and the element (by localId).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime

import networkx as nx
from lxml import etree

from apps.ladder.graph import from_graph
from apps.ladder.layout import BLOCK_PINS, Box, Layout, layout
from apps.ladder.program import TIMERS, Program, ProgramError, blocks, parse_time
from apps.ladder.program import variables as program_variables

NS = "http://www.plcopen.org/xml/tc6_0201"
XHTML = "http://www.w3.org/1999/xhtml"
ROLES = {"input": "inputVars", "output": "outputVars", "memory": "localVars"}
CONTACT_ATTRS = {"NO": ("false", "none"), "NC": ("true", "none"), "P": ("false", "rising"), "N": ("false", "falling")}
COIL_ATTRS = {"OUT": ("false", "none"), "NOT": ("true", "none"), "SET": ("false", "set"), "RST": ("false", "reset")}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPERAND = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.Q)?$")


# ---------------------------------------------------------------- export

def to_plcopen(program: Program, *, name: str = "program0", variables: dict[str, str] | None = None,
               created: datetime | None = None) -> bytes:
    """A PLCopen XML project holding `program` as the LD program POU `name`.

    `variables` maps each BOOL variable to its role, "input", "output" or "memory" (inputVars, outputVars,
    localVars); variables of the program that it leaves out get their role from `program.variables`.
    Timer and counter instances are localVars of the derived types TON, ..., CTD. `created` stamps the file
    header (default: now).
    """
    roles = dict(program_variables(program))
    roles.update(variables or {})
    for var, role in roles.items():
        if role not in ROLES:
            raise ValueError(f"variable {var}: role {role!r} is not one of {', '.join(ROLES)}")
    instances = blocks(program)
    for var in roles:
        if var in instances:
            raise ProgramError(f"{var} is both a BOOL variable and a {instances[var].kind} instance")
    stamp = (created or datetime.now()).replace(microsecond=0).isoformat()

    root = etree.Element(_q("project"), nsmap={None: NS, "xhtml": XHTML})
    _sub(root, "fileHeader", companyName="aligned-generators", productName="apps.ladder", productVersion="1",
         creationDateTime=stamp)
    header = _sub(root, "contentHeader", name=name, modificationDateTime=stamp)
    coordinates = _sub(header, "coordinateInfo")
    for language in ("fbd", "ld", "sfc"):  # the schema's order
        _sub(_sub(coordinates, language), "scaling", x="0", y="0")
    types = _sub(root, "types")
    _sub(types, "dataTypes")
    pou = _sub(_sub(types, "pous"), "pou", name=name, pouType="program")
    interface = _sub(pou, "interface")
    for role, tag in ROLES.items():
        names = [v for v, r in roles.items() if r == role]
        if role == "memory":
            names += list(instances)
        if not names:
            continue
        var_list = _sub(interface, tag)
        for var in names:
            type_ = _sub(_sub(var_list, "variable", name=var), "type")
            if var in instances:
                _sub(type_, "derived", name=instances[var].kind)
            else:
                _sub(type_, "BOOL")
    _body(_sub(_sub(pou, "body"), "LD"), layout(program))
    configuration = _sub(_sub(_sub(root, "instances"), "configurations"), "configuration", name="config")
    task = _sub(_sub(configuration, "resource", name="resource1"), "task", name="task0", priority="0",
                interval="T#20ms")
    _sub(task, "pouInstance", name="instance0", typeName=name)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent, tag: str, text: str | None = None, **attrs) -> etree._Element:
    el = etree.SubElement(parent, _q(tag), {k: str(v) for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _body(ld, lay: Layout) -> None:
    ids = {node: k for k, node in enumerate(lay.boxes, 1)}
    incoming: dict[tuple[str, str], list] = {}
    for w in lay.wires:
        incoming.setdefault((w.dst, w.dst_pin), []).append(w)

    def position(el, box: Box):
        _sub(el, "position", x=box.x, y=box.y)

    def point_in(el, box: Box, pin: str):
        cp = _sub(el, "connectionPointIn")
        _rel(cp, box, box.inputs[pin])
        for w in incoming.get((box.node, pin), []):
            source = lay.boxes[w.src]
            attrs = {"refLocalId": ids[w.src]}
            if source.type == "block":
                attrs["formalParameter"] = w.src_pin
            connection = _sub(cp, "connection", **attrs)
            for x, y in reversed(w.points):  # Beremiz lists a wire's points from its input end
                _sub(connection, "position", x=x, y=y)

    def point_out(el, box: Box, pin: str, **attrs):
        _rel(_sub(el, "connectionPointOut", **attrs), box, box.outputs[pin])

    for node, box in lay.boxes.items():
        size = {"localId": ids[node], "height": box.height, "width": box.width}
        if box.type == "left_rail":
            el = _sub(ld, "leftPowerRail", **size)
            position(el, box)
            point_out(el, box, "out", formalParameter="")
        elif box.type == "right_rail":
            el = _sub(ld, "rightPowerRail", **size)
            position(el, box)
            for pin in box.inputs:
                point_in(el, box, pin)
        elif box.type in ("contact", "coil"):
            if box.type == "contact":
                negated, edge = CONTACT_ATTRS[box.kind]
                storage = "none"
            else:
                (negated, storage), edge = COIL_ATTRS[box.kind], "none"
            el = _sub(ld, box.type, **size, negated=negated, edge=edge, storage=storage)
            position(el, box)
            point_in(el, box, "in")
            point_out(el, box, "out")
            _sub(el, "variable", box.label)
        elif box.type == "block":
            el = _sub(ld, "block", **size, typeName=box.kind, instanceName=box.label)
            position(el, box)
            inputs = _sub(el, "inputVariables")
            for pin in box.inputs:
                point_in(_sub(inputs, "variable", formalParameter=pin), box, pin)
            _sub(el, "inOutVariables")
            outputs = _sub(el, "outputVariables")
            for pin in box.outputs:
                point_out(_sub(outputs, "variable", formalParameter=pin), box, pin)
        else:  # a block's constant or variable input
            el = _sub(ld, "inVariable", **size, negated="false")
            position(el, box)
            point_out(el, box, "out")
            _sub(el, "expression", box.label)


def _rel(point, box: Box, at: tuple[int, int]) -> None:
    _sub(point, "relPosition", x=at[0] - box.x, y=at[1] - box.y)


# ---------------------------------------------------------------- import

@dataclass
class _Element:
    tag: str
    local_id: int
    x: float
    y: float
    el: etree._Element
    inputs: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # pin -> (refLocalId, formal)
    expressions: dict[str, str] = field(default_factory=dict)  # pin -> expression written in place

    def __str__(self) -> str:
        return f"{self.tag} localId {self.local_id}"


def from_plcopen(source, pou: str | None = None) -> Program:
    """The program in the LD body of POU `pou` (default: the first program POU with an LD body) of a PLCopen
    XML file (a path) or document (bytes, or a str starting with '<'); ProgramError naming the file."""
    name, root = _read(source)
    try:
        return _import(root, pou)
    except ProgramError as exc:
        raise ProgramError(f"{name}: {exc}") from None


def _read(source) -> tuple[str, etree._Element]:
    if isinstance(source, (bytes, bytearray)):
        name, data = "<bytes>", bytes(source)
    elif isinstance(source, str) and source.lstrip().startswith("<"):
        name, data = "<string>", source.encode()
    else:
        name = os.fspath(source)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ProgramError(f"{name}: cannot read: {exc.strerror or exc}") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        why = getattr(exc, "msg", None) or str(exc)  # lxml's msg has the line and column, not its "<string>"
        raise ProgramError(f"{name}: malformed XML: {' '.join(why.split())}") from None
    tag = etree.QName(root)
    if tag.localname != "project" or not (tag.namespace or "").startswith("http://www.plcopen.org/xml/tc6"):
        raise ProgramError(f"{name}: not a PLCopen TC6 project (root element {root.tag})")
    return name, root


def _import(root, pou_name: str | None) -> Program:
    pous = root.findall("{*}types/{*}pous/{*}pou")
    if pou_name is not None:
        chosen = [p for p in pous if p.get("name") == pou_name]
        if not chosen:
            raise ProgramError(f"no POU named {pou_name!r} (POUs: {', '.join(p.get('name', '?') for p in pous)})")
        pou = chosen[0]
    else:
        programs = [p for p in pous if p.get("pouType") == "program"]
        with_ld = [p for p in programs if p.find("{*}body/{*}LD") is not None]
        if not with_ld:
            raise ProgramError("no program POU with an LD body" if programs else "no program POU")
        pou = with_ld[0]
    ld = pou.find("{*}body/{*}LD")
    if ld is None:
        bodies = [etree.QName(b).localname for body in pou.findall("{*}body") for b in body if isinstance(b.tag, str)]
        raise ProgramError(f"POU {pou.get('name')!r} has no LD body (body: {', '.join(bodies) or 'none'})")
    elements = _elements(ld)
    try:
        return from_graph(_graph(elements))
    except ProgramError as exc:
        raise ProgramError(f"POU {pou.get('name')!r}: {exc}") from None


def _elements(ld) -> dict[int, _Element]:
    out: dict[int, _Element] = {}
    for el in ld:
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname
        lid = _int(el.get("localId"), f"<{tag}> element: localId")
        if tag == "comment":
            continue
        if tag not in ("leftPowerRail", "rightPowerRail", "contact", "coil", "block", "inVariable"):
            raise ProgramError(f"{tag} localId {lid}: unsupported LD element")
        if lid in out:
            raise ProgramError(f"{tag} localId {lid}: the localId is used twice")
        pos = el.find("{*}position")
        x = _float(pos.get("x") if pos is not None else "0", f"{tag} localId {lid}: position x")
        y = _float(pos.get("y") if pos is not None else "0", f"{tag} localId {lid}: position y")
        e = out[lid] = _Element(tag, lid, x, y, el)
        if tag in ("contact", "coil"):
            e.inputs["in"] = _connections(el.find("{*}connectionPointIn"), e)
        elif tag == "rightPowerRail":
            e.inputs["in"] = [c for cp in el.findall("{*}connectionPointIn") for c in _connections(cp, e)]
        elif tag == "block":
            for var in el.findall("{*}inputVariables/{*}variable"):
                pin = var.get("formalParameter", "")
                if var.get("negated", "false") in ("true", "1") or var.get("edge", "none") != "none":
                    raise ProgramError(f"{e}: a negated or edge input {pin} is not supported")
                cp = var.find("{*}connectionPointIn")
                e.inputs[pin] = _connections(cp, e)
                expression = cp.find("{*}expression") if cp is not None else None
                if expression is not None:
                    e.expressions[pin] = (expression.text or "").strip()
    for e in out.values():
        for pin, connections in e.inputs.items():
            for ref, _ in connections:
                if ref not in out:
                    raise ProgramError(f"{e}: connection to unknown localId {ref}")
    return out


def _connections(cp, e: _Element) -> list[tuple[int, str | None]]:
    if cp is None:
        return []
    return [(_int(c.get("refLocalId"), f"{e}: refLocalId"), c.get("formalParameter") or None)
            for c in cp.findall("{*}connection")]


def _int(text, what: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ProgramError(f"{what} {text!r} is not an integer") from None


def _float(text, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ProgramError(f"{what} {text!r} is not a number") from None


def _graph(elements: dict[int, _Element]) -> nx.DiGraph:
    """The graph form: element nodes by localId, rungs = connected groups, ordered top to bottom."""
    wires: list[tuple[int, int]] = []  # power wires, source -> destination
    attrs: dict[int, dict] = {}
    for e in elements.values():
        if e.tag in ("contact", "coil"):
            attrs[e.local_id] = _operand_attrs(e)
            wires += [(_power_source(elements, e, ref, formal), e.local_id) for ref, formal in e.inputs["in"]]
        elif e.tag == "block":
            attrs[e.local_id], powered_by = _block_attrs(elements, e)
            wires += [(src, e.local_id) for src in powered_by]
        elif e.tag == "rightPowerRail":
            for ref, formal in e.inputs["in"]:
                if not (elements[ref].tag == "block" and formal == "ENO"):  # ENO wired to the right rail: no power
                    wires.append((_power_source(elements, e, ref, formal), e.local_id))
    rails = {lid for lid, e in elements.items() if e.tag in ("leftPowerRail", "rightPowerRail")}
    inner = nx.Graph()
    inner.add_nodes_from(attrs)
    inner.add_edges_from((u, v) for u, v in wires if u not in rails and v not in rails)
    spot = {lid: (elements[lid].y, elements[lid].x, lid) for lid in attrs}
    groups = sorted((sorted(c, key=spot.__getitem__) for c in nx.connected_components(inner)),
                    key=lambda c: spot[c[0]])
    g = nx.DiGraph()
    rung_of = {}
    for r, group in enumerate(groups):
        g.add_node(("left", r), rung=r, type="left_rail")
        for lid in group:
            rung_of[lid] = r
            g.add_node(lid, rung=r, **attrs[lid])
        g.add_node(("right", r), rung=r, type="right_rail")
    for u, v in wires:  # _power_source has refused rail-to-rail wires and power from the right rail
        if u in rails:
            u = ("left", rung_of[v])
        elif v in rails:
            v = ("right", rung_of[u])
        g.add_edge(u, v)
    return g


def _power_source(elements: dict[int, _Element], dst: _Element, ref: int, formal: str | None) -> int:
    src = elements[ref]
    if src.tag == "block":
        pin = formal or "Q"  # the schema: no formalParameter = the block's first output that is not ENO
        if pin != "Q":
            raise ProgramError(f"{dst} is wired to output {pin} of {src} (only Q carries power)")
    elif src.tag == "inVariable":
        raise ProgramError(f"{src} feeds {dst} (in-variables may only feed a block's PT, PV, R or LD)")
    elif src.tag == "rightPowerRail" or (src.tag == "leftPowerRail" and dst.tag == "rightPowerRail"):
        raise ProgramError(f"{dst} is wired straight to {src}")
    return ref


def _operand_attrs(e: _Element) -> dict:
    variable = e.el.find("{*}variable")
    var = (variable.text or "").strip() if variable is not None else ""
    if not (_OPERAND if e.tag == "contact" else _NAME).match(var):
        raise ProgramError(f"{e}: variable {var!r} is not a plain name" + (" or NAME.Q" if e.tag == "contact" else ""))
    negated = e.el.get("negated", "false") in ("true", "1")
    edge, storage = e.el.get("edge", "none"), e.el.get("storage", "none")
    table = CONTACT_ATTRS if e.tag == "contact" else COIL_ATTRS
    wanted = (str(negated).lower(), edge if e.tag == "contact" else storage)
    kinds = [k for k, v in table.items() if v == wanted]
    if not kinds or (e.tag == "contact" and storage != "none") or (e.tag == "coil" and edge != "none"):
        raise ProgramError(f"{e} ({var}): negated={str(negated).lower()} edge={edge} storage={storage} is not "
                           f"a supported {e.tag}")
    return {"type": e.tag, "kind": kinds[0], "var": var, "label": f"{e} ({var})"}


def _block_attrs(elements: dict[int, _Element], e: _Element) -> tuple[dict, list[int]]:
    """A block's node attributes and the sources of its power input."""
    kind, name = e.el.get("typeName", ""), e.el.get("instanceName", "")
    if kind not in BLOCK_PINS:
        raise ProgramError(f"{e}: unsupported block type {kind!r} (supported: {', '.join(BLOCK_PINS)})")
    if not _NAME.match(name):
        raise ProgramError(f"{e} ({kind}): instance name {name!r} is not a plain name")
    pins = BLOCK_PINS[kind][0]
    label = f"{e} ({kind} {name})"
    for pin in e.inputs:
        if pin not in pins and pin != "EN":
            raise ProgramError(f"{label}: unknown input {pin!r}")
    for ref, formal in e.inputs.get("EN", []):
        src = elements[ref]
        if not (src.tag == "leftPowerRail" or (src.tag == "block" and formal == "ENO")):
            raise ProgramError(f"{label}: EN is wired to {src} (only an EN wired to the left rail is supported)")
    values = {pin: _parameter(elements, e, label, pin) for pin in pins[1:]}
    attrs = {"type": "block", "kind": kind, "name": name, "label": label}
    try:
        if kind in TIMERS:
            attrs["preset_ms"] = parse_time(values["PT"])
        else:  # a counter
            if not values["PV"].isdigit():
                raise ProgramError(f"PV {values['PV']!r} is not an integer constant")
            attrs["preset"], attrs["aux"] = int(values["PV"]), values[pins[1]]
            if not _NAME.match(attrs["aux"]):
                raise ProgramError(f"{pins[1]} {attrs['aux']!r} is not a variable name")
    except ProgramError as exc:
        raise ProgramError(f"{label}: {exc}") from None
    power = [_power_source(elements, e, ref, formal) for ref, formal in e.inputs.get(pins[0], [])]
    return attrs, power


def _parameter(elements: dict[int, _Element], e: _Element, label: str, pin: str) -> str:
    """The expression feeding a block's PT / PV / R / LD input: an in-variable's, or one written in place."""
    if pin in e.expressions:
        return e.expressions[pin]
    connections = e.inputs.get(pin, [])
    if len(connections) != 1 or elements[connections[0][0]].tag != "inVariable":
        what = "not connected" if not connections else "not wired to one in-variable"
        raise ProgramError(f"{label}: input {pin} is {what}")
    expression = elements[connections[0][0]].el.find("{*}expression")
    return (expression.text or "").strip() if expression is not None else ""
