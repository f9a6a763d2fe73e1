"""PLCopen XML export / import, the grid layout behind it, and the PNG rendering of ladder programs.

The exported XML is validated against the TC6 v2.01 schema when scripts/fetch_tc6_schema.sh has put it in
.cache/plcopen/ (skipped otherwise, but a failure when CI=true). The import tests use small hand-written
documents that reproduce what Beremiz and OpenPLC Editor write (element order, chained coils, block
outputs named by formalParameter, in-variables for PT / PV / R / LD, shared rails, EN / ENO).
"""

from __future__ import annotations

import os
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pytest
from lxml import etree

from apps.ladder.graph import to_graph
from apps.ladder.layout import CONTACT_HEIGHT, CONTACT_WIDTH, LABEL, RAIL_WIDTH, layout
from apps.ladder.plcopen import NS, from_plcopen, to_plcopen
from apps.ladder.program import ProgramError, canonical, canonical_text, parse_program
from apps.ladder.render import render_rungs
from tests.apps.test_ladder_graph import PROGRAMS

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / ".cache" / "plcopen" / "tc6_xml_v201.xsd"
LD_ELEMENTS = ("leftPowerRail", "rightPowerRail", "contact", "coil", "block", "inVariable")
STAMP = datetime(2024, 1, 2, 3, 4, 5)


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def export(name: str, **kw) -> bytes:
    return to_plcopen(parse_program(PROGRAMS[name]), created=STAMP, **kw)


def ld_body(xml: bytes):
    return etree.fromstring(xml).find(f"{q('types')}/{q('pous')}/{q('pou')}/{q('body')}/{q('LD')}")


@pytest.fixture(scope="module")
def schema():
    if not XSD.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{XSD.relative_to(ROOT)} is missing: CI must run scripts/fetch_tc6_schema.sh first")
        pytest.skip(f"{XSD.relative_to(ROOT)} not fetched (run scripts/fetch_tc6_schema.sh to validate the XML)")
    import xmlschema

    return xmlschema.XMLSchema(str(XSD))


def schema_errors(schema, xml) -> list[str]:
    doc = etree.fromstring(xml if isinstance(xml, bytes) else xml.encode())
    return [str(e).splitlines()[0] for e in schema.iter_errors(doc)]


# ---------------------------------------------------------------- export -> import

@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_xml_round_trip(name):
    p = parse_program(PROGRAMS[name])
    assert canonical(from_plcopen(to_plcopen(p))) == canonical(p)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_export_validates_against_the_schema(schema, name):
    assert schema_errors(schema, export(name)) == []


def test_the_schema_check_enforces_element_order(schema):
    root = etree.fromstring(export("seal_in"))
    contact = root.find(f".//{q('contact')}")
    contact.append(contact.find(q("position")))  # position must come first
    assert schema_errors(schema, etree.tostring(root))
    root = etree.fromstring(export("count_up"))
    block = root.find(f".//{q('block')}")
    block.remove(block.find(q("inOutVariables")))  # required, even when empty
    assert schema_errors(schema, etree.tostring(root))


def test_every_element_is_placed_and_every_reference_resolves():
    for name in PROGRAMS:
        ld = ld_body(export(name))
        ids = [int(el.get("localId")) for el in ld]
        assert len(ids) == len(set(ids)), name
        by_id = {int(el.get("localId")): el for el in ld}
        for el in ld:
            assert etree.QName(el).localname in LD_ELEMENTS
            assert el[0].tag == q("position") and {"x", "y"} <= set(el[0].attrib)
            assert float(el.get("width")) > 0 and float(el.get("height")) > 0
            for connection in el.iter(q("connection")):
                assert int(connection.get("refLocalId")) in by_id, (name, el.get("localId"))


def _out_point(el, formal: str | None) -> tuple[float, float]:
    """Absolute position of an element's output connection point (a block's by formalParameter)."""
    pos = el.find(q("position"))
    if el.tag == q("block"):
        variables = el.findall(f"{q('outputVariables')}/{q('variable')}")
        cp = next(v for v in variables if v.get("formalParameter") == formal).find(q("connectionPointOut"))
    else:
        cp = el.find(q("connectionPointOut"))
    rel = cp.find(q("relPosition"))
    return float(pos.get("x")) + float(rel.get("x")), float(pos.get("y")) + float(rel.get("y"))


def test_wires_run_from_the_input_back_to_the_source_output():
    """Beremiz reads a connection's points from the destination to the source, and finds the source's
    connection point by the last point (by name for blocks): both ends must sit on the connection points."""
    for name in PROGRAMS:
        ld = ld_body(export(name))
        by_id = {el.get("localId"): el for el in ld}
        for el in ld:
            pos = el.find(q("position"))
            for cp in el.iter(q("connectionPointIn")):
                rel = cp.find(q("relPosition"))
                here = (float(pos.get("x")) + float(rel.get("x")), float(pos.get("y")) + float(rel.get("y")))
                for connection in cp.findall(q("connection")):
                    source = by_id[connection.get("refLocalId")]
                    formal = connection.get("formalParameter")
                    assert (formal is not None) == (source.tag == q("block"))
                    points = [(float(p.get("x")), float(p.get("y"))) for p in connection.findall(q("position"))]
                    assert len(points) >= 2 and points[0] == here
                    assert points[-1] == _out_point(source, formal)
                    for (x0, y0), (x1, y1) in zip(points, points[1:]):
                        assert x0 == x1 or y0 == y1  # horizontal and vertical segments only


def test_interface_declares_variables_and_instances():
    root = etree.fromstring(export("four_rungs", variables={"O7": "memory"}))
    interface = root.find(f".//{q('pou')}/{q('interface')}")
    lists = {etree.QName(v).localname: {x.get("name"): x.find(q("type"))[0] for x in v} for v in interface}
    assert set(lists["inputVars"]) == {"I1", "I2", "I3", "I4", "I5", "I6", "I7", "I8", "I9"}
    assert set(lists["outputVars"]) == {"O1", "O2", "O3", "O4", "O5", "O6"}
    assert lists["localVars"]["O7"].tag == q("BOOL")
    assert {n: t.get("name") for n, t in lists["localVars"].items() if t.tag == q("derived")} == \
        {"T6": "TOF", "C4": "CTD"}
    task = root.find(f"{q('instances')}/{q('configurations')}/{q('configuration')}/{q('resource')}/{q('task')}")
    assert task.find(q("pouInstance")).get("typeName") == "program0"
    assert root.find(q("fileHeader")).get("creationDateTime") == "2024-01-02T03:04:05"


def test_export_options_and_errors():
    p = parse_program(PROGRAMS["seal_in"])
    assert to_plcopen(p, created=STAMP) == to_plcopen(p, created=STAMP)
    assert b'pou name="Main" pouType="program"' in to_plcopen(p, name="Main")
    with pytest.raises(ValueError, match="role 'global'"):
        to_plcopen(p, variables={"Motor": "global"})
    with pytest.raises(ProgramError, match="both a BOOL variable and a TON instance"):
        to_plcopen(parse_program("NO(T1) TON(T1,T#1s) OUT(X)"))


def test_contact_and_coil_modifiers():
    ld = ld_body(export("edges"))
    contacts = [(c.findtext(q("variable")), c.get("negated"), c.get("edge")) for c in ld.iter(q("contact"))]
    assert contacts == [("Btn", "false", "rising"), ("Btn", "false", "falling"), ("Lamp", "true", "none")]
    coils = [(c.findtext(q("variable")), c.get("negated"), c.get("storage")) for c in ld.iter(q("coil"))]
    assert coils == [("Lamp", "false", "set"), ("Lamp", "false", "reset"), ("Dark", "true", "none")]


# ---------------------------------------------------------------- hand-written documents, as editors write them

def project(body: str, pou: str = "main", interface: str = "", scaling: int = 0, more_pous: str = "") -> str:
    s = f'<scaling x="{scaling}" y="{scaling}"/>'
    return f"""<?xml version='1.0' encoding='utf-8'?>
<project xmlns:xhtml="http://www.w3.org/1999/xhtml" xmlns="http://www.plcopen.org/xml/tc6_0201">
  <fileHeader companyName="Test" productName="Test" productVersion="1" creationDateTime="2024-05-06T07:08:09"/>
  <contentHeader name="Test" modificationDateTime="2024-05-06T07:08:09">
    <coordinateInfo><fbd>{s}</fbd><ld>{s}</ld><sfc>{s}</sfc></coordinateInfo>
  </contentHeader>
  <types>
    <dataTypes/>
    <pous>{more_pous}
      <pou name="{pou}" pouType="program">
        <interface>{interface}</interface>
        <body>
          <LD>{body}</LD>
        </body>
      </pou>
    </pous>
  </types>
  <instances>
    <configurations>
      <configuration name="config">
        <resource name="resource1">
          <task name="task0" priority="0" interval="T#20ms">
            <pouInstance name="instance0" typeName="{pou}"/>
          </task>
        </resource>
      </configuration>
    </configurations>
  </instances>
</project>
"""


# Beremiz style: per-rung rails, the block before its in-variable, an OR as two connections into the block's
# IN, the timer's Q named by formalParameter, a SET coil chained into an OUT coil, a comment, executionOrderId.
BEREMIZ = project("""
            <leftPowerRail localId="1" height="80" width="3">
              <position x="40" y="40"/>
              <connectionPointOut formalParameter="">
                <relPosition x="3" y="20"/>
              </connectionPointOut>
            </leftPowerRail>
            <contact localId="2" height="15" width="21" negated="true" executionOrderId="0">
              <position x="90" y="52"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="1">
                  <position x="90" y="60"/>
                  <position x="43" y="60"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut>
                <relPosition x="21" y="8"/>
              </connectionPointOut>
              <variable>Stop</variable>
            </contact>
            <contact localId="3" height="15" width="21">
              <position x="90" y="92"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="1">
                  <position x="90" y="100"/>
                  <position x="70" y="100"/>
                  <position x="70" y="60"/>
                  <position x="43" y="60"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut>
                <relPosition x="21" y="8"/>
              </connectionPointOut>
              <variable>Reset</variable>
            </contact>
            <block localId="4" width="97" height="102" typeName="TON" instanceName="T0" executionOrderId="0">
              <position x="200" y="20"/>
              <inputVariables>
                <variable formalParameter="IN">
                  <connectionPointIn>
                    <relPosition x="0" y="40"/>
                    <connection refLocalId="2">
                      <position x="200" y="60"/>
                      <position x="111" y="60"/>
                    </connection>
                    <connection refLocalId="3">
                      <position x="200" y="60"/>
                      <position x="150" y="60"/>
                      <position x="150" y="100"/>
                      <position x="111" y="100"/>
                    </connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="PT">
                  <connectionPointIn>
                    <relPosition x="0" y="81"/>
                    <connection refLocalId="5">
                      <position x="200" y="101"/>
                      <position x="180" y="101"/>
                    </connection>
                  </connectionPointIn>
                </variable>
              </inputVariables>
              <inOutVariables/>
              <outputVariables>
                <variable formalParameter="Q">
                  <connectionPointOut>
                    <relPosition x="97" y="40"/>
                  </connectionPointOut>
                </variable>
                <variable formalParameter="ET">
                  <connectionPointOut>
                    <relPosition x="97" y="81"/>
                  </connectionPointOut>
                </variable>
              </outputVariables>
            </block>
            <inVariable localId="5" height="30" width="76" negated="false" executionOrderId="0">
              <position x="104" y="86"/>
              <connectionPointOut>
                <relPosition x="76" y="15"/>
              </connectionPointOut>
              <expression>T#500ms</expression>
            </inVariable>
            <comment localId="9" height="40" width="300">
              <position x="40" y="0"/>
              <content>
                <xhtml:p><![CDATA[Lamp latches after half a second]]></xhtml:p>
              </content>
            </comment>
            <rightPowerRail localId="8" height="40" width="3">
              <position x="500" y="40"/>
              <connectionPointIn>
                <relPosition x="0" y="20"/>
                <connection refLocalId="7">
                  <position x="500" y="60"/>
                  <position x="451" y="60"/>
                </connection>
              </connectionPointIn>
            </rightPowerRail>
            <coil localId="6" height="15" width="21" storage="set">
              <position x="350" y="52"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="4" formalParameter="Q">
                  <position x="350" y="60"/>
                  <position x="297" y="60"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut>
                <relPosition x="21" y="8"/>
              </connectionPointOut>
              <variable>Lamp</variable>
            </coil>
            <coil localId="7" height="15" width="21" negated="false">
              <position x="430" y="52"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="6">
                  <position x="430" y="60"/>
                  <position x="371" y="60"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut>
                <relPosition x="21" y="8"/>
              </connectionPointOut>
              <variable>Busy</variable>
            </coil>
            <leftPowerRail localId="10" height="40" width="3">
              <position x="40" y="160"/>
              <connectionPointOut formalParameter="">
                <relPosition x="3" y="20"/>
              </connectionPointOut>
            </leftPowerRail>
            <contact localId="11" height="15" width="21" edge="rising">
              <position x="90" y="172"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="10">
                  <position x="90" y="180"/>
                  <position x="43" y="180"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut>
                <relPosition x="21" y="8"/>
              </connectionPointOut>
              <variable>T0.Q</variable>
            </contact>
            <coil localId="12" height="15" width="21" negated="true">
              <position x="430" y="172"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="11">
                  <position x="430" y="180"/>
                  <position x="111" y="180"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut>
                <relPosition x="21" y="8"/>
              </connectionPointOut>
              <variable>Pulse</variable>
            </coil>
            <rightPowerRail localId="13" height="40" width="3">
              <position x="500" y="160"/>
              <connectionPointIn>
                <relPosition x="0" y="20"/>
                <connection refLocalId="12">
                  <position x="500" y="180"/>
                  <position x="451" y="180"/>
                </connection>
              </connectionPointIn>
            </rightPowerRail>
""", interface="""
          <localVars>
            <variable name="T0"><type><derived name="TON"/></type></variable>
          </localVars>""")

# Counters: R / LD and PV from in-variables, two coils in parallel on one block output, a connection from
# a block without formalParameter (the schema's default: its first output that is not ENO, Q).
COUNTERS = project("""
            <leftPowerRail localId="1" height="60" width="3">
              <position x="20" y="20"/>
              <connectionPointOut formalParameter=""><relPosition x="3" y="20"/></connectionPointOut>
            </leftPowerRail>
            <contact localId="2" height="15" width="21" edge="rising">
              <position x="60" y="32"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="1"><position x="60" y="40"/><position x="23" y="40"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="21" y="8"/></connectionPointOut>
              <variable>Part</variable>
            </contact>
            <block localId="3" width="60" height="100" typeName="CTU" instanceName="C1">
              <position x="150" y="10"/>
              <inputVariables>
                <variable formalParameter="CU">
                  <connectionPointIn>
                    <relPosition x="0" y="30"/>
                    <connection refLocalId="2"><position x="150" y="40"/><position x="81" y="40"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="R">
                  <connectionPointIn>
                    <relPosition x="0" y="55"/>
                    <connection refLocalId="4"><position x="150" y="65"/><position x="135" y="65"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="PV">
                  <connectionPointIn>
                    <relPosition x="0" y="80"/>
                    <connection refLocalId="5"><position x="150" y="90"/><position x="135" y="90"/></connection>
                  </connectionPointIn>
                </variable>
              </inputVariables>
              <inOutVariables/>
              <outputVariables>
                <variable formalParameter="Q"><connectionPointOut><relPosition x="60" y="30"/></connectionPointOut></variable>
                <variable formalParameter="CV"><connectionPointOut><relPosition x="60" y="55"/></connectionPointOut></variable>
              </outputVariables>
            </block>
            <inVariable localId="4" height="20" width="60">
              <position x="75" y="55"/>
              <connectionPointOut><relPosition x="60" y="10"/></connectionPointOut>
              <expression>Reset</expression>
            </inVariable>
            <inVariable localId="5" height="20" width="30">
              <position x="105" y="80"/>
              <connectionPointOut><relPosition x="30" y="10"/></connectionPointOut>
              <expression>5</expression>
            </inVariable>
            <coil localId="6" height="15" width="21">
              <position x="300" y="32"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="3" formalParameter="Q"><position x="300" y="40"/><position x="210" y="40"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="21" y="8"/></connectionPointOut>
              <variable>Full</variable>
            </coil>
            <coil localId="7" height="15" width="21" storage="reset">
              <position x="300" y="72"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="3" formalParameter="Q">
                  <position x="300" y="80"/><position x="250" y="80"/><position x="250" y="40"/><position x="210" y="40"/>
                </connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="21" y="8"/></connectionPointOut>
              <variable>Belt</variable>
            </coil>
            <rightPowerRail localId="8" height="60" width="3">
              <position x="360" y="20"/>
              <connectionPointIn>
                <relPosition x="0" y="20"/>
                <connection refLocalId="6"><position x="360" y="40"/><position x="321" y="40"/></connection>
              </connectionPointIn>
              <connectionPointIn>
                <relPosition x="0" y="60"/>
                <connection refLocalId="7"><position x="360" y="80"/><position x="321" y="80"/></connection>
              </connectionPointIn>
            </rightPowerRail>
            <leftPowerRail localId="10" height="40" width="3">
              <position x="20" y="140"/>
              <connectionPointOut formalParameter=""><relPosition x="3" y="20"/></connectionPointOut>
            </leftPowerRail>
            <contact localId="11" height="15" width="21" edge="falling">
              <position x="60" y="152"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="10"><position x="60" y="160"/><position x="23" y="160"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="21" y="8"/></connectionPointOut>
              <variable>Sensor</variable>
            </contact>
            <block localId="12" width="60" height="100" typeName="CTD" instanceName="C2">
              <position x="150" y="130"/>
              <inputVariables>
                <variable formalParameter="CD">
                  <connectionPointIn>
                    <relPosition x="0" y="30"/>
                    <connection refLocalId="11"><position x="150" y="160"/><position x="81" y="160"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="LD">
                  <connectionPointIn>
                    <relPosition x="0" y="55"/>
                    <connection refLocalId="13"><position x="150" y="185"/><position x="135" y="185"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="PV">
                  <connectionPointIn>
                    <relPosition x="0" y="80"/>
                    <connection refLocalId="14"><position x="150" y="210"/><position x="135" y="210"/></connection>
                  </connectionPointIn>
                </variable>
              </inputVariables>
              <inOutVariables/>
              <outputVariables>
                <variable formalParameter="Q"><connectionPointOut><relPosition x="60" y="30"/></connectionPointOut></variable>
                <variable formalParameter="CV"><connectionPointOut><relPosition x="60" y="55"/></connectionPointOut></variable>
              </outputVariables>
            </block>
            <inVariable localId="13" height="20" width="50">
              <position x="85" y="175"/>
              <connectionPointOut><relPosition x="50" y="10"/></connectionPointOut>
              <expression>Load</expression>
            </inVariable>
            <inVariable localId="14" height="20" width="30">
              <position x="105" y="200"/>
              <connectionPointOut><relPosition x="30" y="10"/></connectionPointOut>
              <expression>3</expression>
            </inVariable>
            <coil localId="15" height="15" width="21">
              <position x="300" y="152"/>
              <connectionPointIn>
                <relPosition x="0" y="8"/>
                <connection refLocalId="12"><position x="300" y="160"/><position x="210" y="160"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="21" y="8"/></connectionPointOut>
              <variable>Empty</variable>
            </coil>
            <rightPowerRail localId="16" height="40" width="3">
              <position x="360" y="140"/>
              <connectionPointIn>
                <relPosition x="0" y="20"/>
                <connection refLocalId="15"><position x="360" y="160"/><position x="321" y="160"/></connection>
              </connectionPointIn>
            </rightPowerRail>
""")

# OpenPLC Editor style: one left and one right rail for the whole sheet (several connection points, some
# unused), grid scaling 10, 30 x 20 contacts, timers cascaded with EN / ENO wired rail to rail.
OPENPLC = project("""
            <leftPowerRail localId="1" height="200" width="10">
              <position x="90" y="110"/>
              <connectionPointOut formalParameter=""><relPosition x="10" y="20"/></connectionPointOut>
              <connectionPointOut formalParameter=""><relPosition x="10" y="60"/></connectionPointOut>
              <connectionPointOut formalParameter=""><relPosition x="10" y="100"/></connectionPointOut>
              <connectionPointOut formalParameter=""><relPosition x="10" y="180"/></connectionPointOut>
            </leftPowerRail>
            <rightPowerRail localId="2" height="200" width="10">
              <position x="990" y="110"/>
              <connectionPointIn><relPosition x="0" y="20"/></connectionPointIn>
              <connectionPointIn>
                <relPosition x="0" y="60"/>
                <connection refLocalId="4" formalParameter="ENO"><position x="990" y="170"/><position x="730" y="170"/></connection>
              </connectionPointIn>
              <connectionPointIn>
                <relPosition x="0" y="100"/>
                <connection refLocalId="6"><position x="990" y="210"/><position x="850" y="210"/></connection>
              </connectionPointIn>
              <connectionPointIn>
                <relPosition x="0" y="180"/>
                <connection refLocalId="10"><position x="990" y="290"/><position x="850" y="290"/></connection>
              </connectionPointIn>
            </rightPowerRail>
            <block localId="3" typeName="TON" instanceName="TON0" height="140" width="90">
              <position x="350" y="130"/>
              <inputVariables>
                <variable formalParameter="EN">
                  <connectionPointIn>
                    <relPosition x="0" y="40"/>
                    <connection refLocalId="1"><position x="350" y="170"/><position x="100" y="170"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="IN">
                  <connectionPointIn>
                    <relPosition x="0" y="80"/>
                    <connection refLocalId="5"><position x="350" y="210"/><position x="210" y="210"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="PT">
                  <connectionPointIn>
                    <relPosition x="0" y="120"/>
                    <connection refLocalId="7"><position x="350" y="250"/><position x="310" y="250"/></connection>
                  </connectionPointIn>
                </variable>
              </inputVariables>
              <inOutVariables/>
              <outputVariables>
                <variable formalParameter="ENO"><connectionPointOut><relPosition x="90" y="40"/></connectionPointOut></variable>
                <variable formalParameter="Q"><connectionPointOut><relPosition x="90" y="80"/></connectionPointOut></variable>
                <variable formalParameter="ET"><connectionPointOut><relPosition x="90" y="120"/></connectionPointOut></variable>
              </outputVariables>
            </block>
            <block localId="4" typeName="TOF" instanceName="TOF0" height="140" width="90" executionOrderId="0">
              <position x="640" y="130"/>
              <inputVariables>
                <variable formalParameter="EN">
                  <connectionPointIn>
                    <relPosition x="0" y="40"/>
                    <connection refLocalId="3" formalParameter="ENO"><position x="640" y="170"/><position x="440" y="170"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="IN">
                  <connectionPointIn>
                    <relPosition x="0" y="80"/>
                    <connection refLocalId="3" formalParameter="Q"><position x="640" y="210"/><position x="440" y="210"/></connection>
                  </connectionPointIn>
                </variable>
                <variable formalParameter="PT">
                  <connectionPointIn>
                    <relPosition x="0" y="120"/>
                    <connection refLocalId="8"><position x="640" y="250"/><position x="590" y="250"/></connection>
                  </connectionPointIn>
                </variable>
              </inputVariables>
              <inOutVariables/>
              <outputVariables>
                <variable formalParameter="ENO"><connectionPointOut><relPosition x="90" y="40"/></connectionPointOut></variable>
                <variable formalParameter="Q"><connectionPointOut><relPosition x="90" y="80"/></connectionPointOut></variable>
                <variable formalParameter="ET"><connectionPointOut><relPosition x="90" y="120"/></connectionPointOut></variable>
              </outputVariables>
            </block>
            <contact localId="5" height="20" width="30" negated="true">
              <position x="180" y="200"/>
              <connectionPointIn>
                <relPosition x="0" y="10"/>
                <connection refLocalId="1"><position x="180" y="210"/><position x="100" y="210"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="30" y="10"/></connectionPointOut>
              <variable>blink</variable>
            </contact>
            <coil localId="6" height="20" width="30" negated="false">
              <position x="820" y="200"/>
              <connectionPointIn>
                <relPosition x="0" y="10"/>
                <connection refLocalId="4" formalParameter="Q"><position x="820" y="210"/><position x="730" y="210"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="30" y="10"/></connectionPointOut>
              <variable>blink</variable>
            </coil>
            <inVariable localId="7" height="40" width="70" negated="false">
              <position x="240" y="230"/>
              <connectionPointOut><relPosition x="70" y="20"/></connectionPointOut>
              <expression>T#500ms</expression>
            </inVariable>
            <inVariable localId="8" height="40" width="70" negated="false">
              <position x="520" y="230"/>
              <connectionPointOut><relPosition x="70" y="20"/></connectionPointOut>
              <expression>T#500ms</expression>
            </inVariable>
            <contact localId="9" height="20" width="30">
              <position x="180" y="280"/>
              <connectionPointIn>
                <relPosition x="0" y="10"/>
                <connection refLocalId="1"><position x="180" y="290"/><position x="100" y="290"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="30" y="10"/></connectionPointOut>
              <variable>start</variable>
            </contact>
            <coil localId="10" height="20" width="30">
              <position x="820" y="280"/>
              <connectionPointIn>
                <relPosition x="0" y="10"/>
                <connection refLocalId="9"><position x="820" y="290"/><position x="210" y="290"/></connection>
              </connectionPointIn>
              <connectionPointOut><relPosition x="30" y="10"/></connectionPointOut>
              <variable>run</variable>
            </coil>
""", pou="Blinker", scaling=10)

HAND_WRITTEN = {
    "beremiz": (BEREMIZ, "[NC(Stop),NO(Reset)] TON(T0,T#500ms) OUT(Busy) SET(Lamp)\nP(T0.Q) NOT(Pulse)"),
    "counters": (COUNTERS, "P(Part) CTU(C1,5,Reset) RST(Belt) OUT(Full)\nN(Sensor) CTD(C2,3,Load) OUT(Empty)"),
    "openplc": (OPENPLC, "NC(blink) TON(TON0,T#500ms) TOF(TOF0,T#500ms) OUT(blink)\nNO(start) OUT(run)"),
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_import_what_editors_write(name):
    xml, expected = HAND_WRITTEN[name]
    assert canonical_text(from_plcopen(xml.encode())) == expected


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_documents_are_schema_valid(schema, name):
    assert schema_errors(schema, HAND_WRITTEN[name][0]) == []


def test_import_from_a_path_a_string_and_a_named_pou(tmp_path):
    path = tmp_path / "plc.xml"
    path.write_text(BEREMIZ, encoding="utf-8")
    expected = HAND_WRITTEN["beremiz"][1]
    assert canonical_text(from_plcopen(path)) == expected
    assert canonical_text(from_plcopen(str(path), pou="main")) == expected
    assert canonical_text(from_plcopen(BEREMIZ)) == expected
    st = '<pou name="helper" pouType="function"><body><ST><xhtml:p>x := 1;</xhtml:p></ST></body></pou>'
    assert canonical_text(from_plcopen(project(BEREMIZ.split("<LD>")[1].split("</LD>")[0], more_pous=st))) \
        == expected


# ---------------------------------------------------------------- import errors

def _break(xml: str, old: str, new: str) -> str:
    assert old in xml
    return xml.replace(old, new, 1)


BAD_DOCUMENTS = {
    "malformed": ("<project><types></project>", "malformed XML"),
    "not plcopen": ("<?xml version='1.0'?><plan/>", "not a PLCopen TC6 project"),
    "dangling": (_break(BEREMIZ, '<connection refLocalId="6">', '<connection refLocalId="42">'),
                 "coil localId 7: connection to unknown localId 42"),
    "unknown element": (_break(_break(BEREMIZ, '<inVariable localId="5" height="30" width="76" negated="false" '
                                               'executionOrderId="0">', '<outVariable localId="5">'),
                               "</inVariable>", "</outVariable>"),
                        "outVariable localId 5: unsupported LD element"),
    "unknown block": (_break(BEREMIZ, 'typeName="TON"', 'typeName="R_TRIG"'), "unsupported block type 'R_TRIG'"),
    "not Q": (_break(BEREMIZ, 'refLocalId="4" formalParameter="Q"', 'refLocalId="4" formalParameter="ET"'),
              "output ET of block localId 4"),
    "no LD": (project("").replace("<LD></LD>", "<ST><xhtml:p>x := 1;</xhtml:p></ST>"), "no program POU with an LD"),
    "duplicate id": (_break(BEREMIZ, '<contact localId="3"', '<contact localId="2"'),
                     "contact localId 2: the localId is used twice"),
    "bad preset": (_break(BEREMIZ, "<expression>T#500ms</expression>", "<expression>T#soon</expression>"),
                   "bad duration 'T#soon'"),
    "no PT": (_break(BEREMIZ, '<connection refLocalId="5">', '<connection refLocalId="3">'),
              "input PT is not wired to one in-variable"),
    "address": (_break(BEREMIZ, "<variable>Stop</variable>", "<variable>%IX0.0</variable>"),
                "contact localId 2: variable '%IX0.0' is not a plain name"),
    "conditional EN": (_break(OPENPLC, '<connection refLocalId="1"><position x="350" y="170"/>',
                              '<connection refLocalId="5"><position x="350" y="170"/>'),
                       "EN is wired to contact localId 5"),
    "bridge": (_break(BEREMIZ, '<connection refLocalId="4" formalParameter="Q">',
                      '<connection refLocalId="3"/><connection refLocalId="4" formalParameter="Q">'),
               "contact localId 3 (Reset) is reached along separate branches"),
}


@pytest.mark.parametrize("why", sorted(BAD_DOCUMENTS))
def test_import_errors_are_one_line_and_name_the_file(tmp_path, why):
    xml, message = BAD_DOCUMENTS[why]
    path = tmp_path / f"{why.replace(' ', '_')}.xml"
    path.write_text(xml, encoding="utf-8")
    with pytest.raises(ProgramError) as err:
        from_plcopen(path)
    text = str(err.value)
    assert text.startswith(str(path) + ": ") and message in text and "\n" not in text, text


def test_import_errors_for_missing_files_and_pous(tmp_path):
    with pytest.raises(ProgramError, match="missing.xml: cannot read"):
        from_plcopen(tmp_path / "missing.xml")
    with pytest.raises(ProgramError, match=r"<bytes>: no POU named 'other' \(POUs: main\)"):
        from_plcopen(BEREMIZ.encode(), pou="other")


# ---------------------------------------------------------------- layout and rendering

@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_layout_matches_the_graph_and_nothing_overlaps(name):
    p = parse_program(PROGRAMS[name])
    lay, g = layout(p), to_graph(p)
    assert {n for n, b in lay.boxes.items() if b.type != "variable"} == set(g.nodes)
    power = {(w.src, w.dst) for w in lay.wires if lay.boxes[w.src].type != "variable"}
    assert power == set(g.edges)
    for w in lay.wires:
        assert w.points[0] == lay.boxes[w.src].outputs[w.src_pin]
        assert w.points[-1] == lay.boxes[w.dst].inputs[w.dst_pin]
        assert all(x0 == x1 or y0 == y1 for (x0, y0), (x1, y1) in zip(w.points, w.points[1:]))
    # element boxes with the label above them: disjoint, inside their rung, rungs one below the other
    areas = []
    for b in lay.boxes.values():
        if b.type in ("left_rail", "right_rail"):
            assert b.width == RAIL_WIDTH
            continue
        if b.type in ("contact", "coil"):
            assert (b.width, b.height) == (CONTACT_WIDTH, CONTACT_HEIGHT)
        top = b.y - (LABEL if b.type != "variable" else 0)
        rung_top, rung_bottom = lay.rungs[b.rung]
        assert rung_top <= top and b.y + b.height <= rung_bottom
        assert 0 <= b.x and b.x + b.width <= lay.width
        areas.append((b.node, b.x, top, b.x + b.width, b.y + b.height))
    for (n1, ax0, ay0, ax1, ay1), (n2, bx0, by0, bx1, by1) in combinations(areas, 2):
        assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (n1, n2)
    assert all(b0 < t1 for (_, b0), (t1, _) in zip(lay.rungs, lay.rungs[1:]))
    assert lay.rungs[-1][1] <= lay.height


def test_render_writes_a_png(tmp_path):
    path = tmp_path / "out" / "rungs.png"
    render_rungs(parse_program(PROGRAMS["four_rungs"]), path, title="four rungs")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    render_rungs(parse_program(PROGRAMS["coils_only"]), tmp_path / "plain.png")
    assert (tmp_path / "plain.png").stat().st_size > 1000


def _every_pattern_variant():
    """One generated task per (family, variant) of apps/ladder/tasks.py, found by generating until all appear."""
    from apps.ladder.tasks import generate

    seen = {}
    for task in generate("train", 600, seed=11) + generate("heldout", 200, seed=11):
        for pattern in task.patterns:
            seen.setdefault(pattern, task)
    return seen


def test_export_then_import_gives_the_same_program_for_every_generated_pattern():
    variants = _every_pattern_variant()
    assert len(variants) == 20  # every variant of the eight families
    for pattern, task in variants.items():
        program = task.parsed()
        xml = to_plcopen(program, variables={v.name: v.role for v in task.variables})
        assert canonical(from_plcopen(xml)) == canonical(program), pattern


def test_every_generated_pattern_exports_schema_valid_xml(schema):
    for pattern, task in _every_pattern_variant().items():
        xml = to_plcopen(task.parsed(), variables={v.name: v.role for v in task.variables})
        assert schema_errors(schema, xml) == [], pattern
