-- HEP v3 (Homer Encapsulation Protocol) for Wireshark builds without a HEP dissector
-- (Debian's 4.0 has none). Load it with `tshark -X lua_script:hep.lua` or copy it to
-- ~/.local/lib/wireshark/plugins/; then `-d udp.port==9060,hep` decodes what
-- `[hep] address` sends, handing the SIP message to Wireshark's SIP dissector.
--
-- A HEP3 packet: "HEP3", total length (2 bytes), then chunks of vendor id (2), type (2),
-- length (2, with this 6-byte header) and value. Types: 1 IP family, 2 IP protocol,
-- 3/4 IPv4 source/destination, 5/6 IPv6, 7/8 ports, 9/10 time (s, µs), 11 protocol
-- type (1: SIP), 12 capture agent id, 14 auth key, 15 payload, 17 correlation id.

local hep = Proto("hep", "Homer Encapsulation Protocol v3")

local f = hep.fields
f.version = ProtoField.string("hep.version", "Version")
f.length = ProtoField.uint16("hep.length", "Length")
f.family = ProtoField.uint8("hep.ip_family", "IP family")
f.proto = ProtoField.uint8("hep.ip_proto", "IP protocol")
f.src4 = ProtoField.ipv4("hep.src_ip", "Source IP")
f.dst4 = ProtoField.ipv4("hep.dst_ip", "Destination IP")
f.src6 = ProtoField.ipv6("hep.src_ip6", "Source IPv6")
f.dst6 = ProtoField.ipv6("hep.dst_ip6", "Destination IPv6")
f.sport = ProtoField.uint16("hep.src_port", "Source port")
f.dport = ProtoField.uint16("hep.dst_port", "Destination port")
f.ts = ProtoField.uint32("hep.timestamp", "Timestamp (s)")
f.tsu = ProtoField.uint32("hep.timestamp_us", "Timestamp (µs)")
f.ptype = ProtoField.uint8("hep.proto_type", "Protocol type")
f.capture = ProtoField.uint32("hep.capture_id", "Capture agent id")
f.auth = ProtoField.string("hep.auth_key", "Auth key")
f.corr = ProtoField.string("hep.correlation_id", "Correlation id")
f.payload = ProtoField.bytes("hep.payload", "Payload")

local sip = Dissector.get("sip")

local simple = {
  [1] = f.family, [2] = f.proto, [3] = f.src4, [4] = f.dst4, [5] = f.src6, [6] = f.dst6,
  [7] = f.sport, [8] = f.dport, [9] = f.ts, [10] = f.tsu, [11] = f.ptype, [12] = f.capture,
  [14] = f.auth, [17] = f.corr,
}

function hep.dissector(buf, pinfo, tree)
  if buf:len() < 6 or buf(0, 4):string() ~= "HEP3" then
    return 0
  end
  pinfo.cols.protocol = "HEP3"
  local total = buf(4, 2):uint()
  local sub = tree:add(hep, buf(0, math.min(total, buf:len())))
  sub:add(f.version, buf(0, 4))
  sub:add(f.length, buf(4, 2))
  local offset = 6
  while offset + 6 <= math.min(total, buf:len()) do
    local kind = buf(offset + 2, 2):uint()
    local len = buf(offset + 4, 2):uint()
    if len < 6 or offset + len > buf:len() then
      break
    end
    local value = buf(offset + 6, len - 6)
    if kind == 15 then
      sub:add(f.payload, value)
      sip:call(value:tvb(), pinfo, tree)
    elseif simple[kind] ~= nil then
      sub:add(simple[kind], value)
    end
    offset = offset + len
  end
  return offset
end

DissectorTable.get("udp.port"):add_for_decode_as(hep)
