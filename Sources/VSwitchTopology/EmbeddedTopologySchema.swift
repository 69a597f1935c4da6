// The topology XSD, compiled into the module (the shipped copy is Sources/VSwitchProfiles/Schema/topology.xsd).
// Generated from the .xsd files named below: edit those, then paste them here verbatim
// (a test fails until the two are identical).

enum EmbeddedTopologySchema {
    /// VSwitchProfiles/Schema/topology.xsd
    static let topology = #"""
<?xml version="1.0" encoding="UTF-8"?>
<!--
  VSwitch topology document: switch settings, profile files, ports and the virtual systems
  behind them. Compiled into VSwitchTopology (EmbeddedTopologySchema.swift, kept identical by a
  test). The XSD checks structure and types; the reader (VSwitchTopology) checks the rest
  (uniqueness of names, namespaces and MACs, profile bindings, CIDR syntax).

    <Topology xmlns="urn:vswitch:topology:1" Name="default">
      <Switch MACAgingTime="300" MACTableSize="65536" ForwardingThreads="0" MaxMACsPerPort="1024"/>
      <ProfileFile Path="profiles/tenants.xml"/>
      <Port Name="vsw-a1" Type="tap" Profile="urn:vswitch:profile:tenant-a" MTU="1500" Adopt="false">
        <VirtualSystem Namespace="vs-a1" InterfaceName="eth0" MACAddress="02:00:00:00:0a:01">
          <Address>10.10.0.1/24</Address>
        </VirtualSystem>
      </Port>
    </Topology>
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:t="urn:vswitch:topology:1"
           targetNamespace="urn:vswitch:topology:1"
           elementFormDefault="qualified" attributeFormDefault="unqualified">

  <xs:simpleType name="InterfaceName">
    <xs:restriction base="xs:string">
      <xs:pattern value="[A-Za-z0-9_.\-]{1,15}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="NamespaceName">
    <xs:restriction base="xs:string">
      <xs:pattern value="[A-Za-z0-9_.\-]{1,64}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MAC">
    <xs:restriction base="xs:token">
      <xs:pattern value="[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{12}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PortType">
    <xs:restriction base="xs:token">
      <xs:enumeration value="tap"/>
      <xs:enumeration value="netdev"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MTU">
    <xs:restriction base="xs:unsignedInt">
      <xs:minInclusive value="68"/>
      <xs:maxInclusive value="9000"/>
    </xs:restriction>
  </xs:simpleType>

  <xs:element name="Topology">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element ref="t:Switch"/>
        <xs:element ref="t:ProfileFile"/>
        <xs:element ref="t:Port"/>
        <xs:any namespace="##other" processContents="lax"/>
      </xs:choice>
      <xs:attribute name="Name" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:minLength value="1"/>
            <xs:maxLength value="64"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
    </xs:complexType>
  </xs:element>

  <xs:element name="Switch">
    <xs:complexType>
      <xs:sequence>
        <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="MACAgingTime">
        <xs:simpleType>
          <xs:restriction base="xs:unsignedInt">
            <xs:minInclusive value="10"/>
            <xs:maxInclusive value="3600"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="MACTableSize">
        <xs:simpleType>
          <xs:restriction base="xs:unsignedInt">
            <xs:minInclusive value="1"/>
            <xs:maxInclusive value="4000000"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="ForwardingThreads">
        <xs:simpleType>
          <xs:restriction base="xs:unsignedInt">
            <xs:maxInclusive value="64"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="MaxMACsPerPort" type="xs:unsignedInt"/>
    </xs:complexType>
  </xs:element>

  <xs:element name="ProfileFile">
    <xs:complexType>
      <xs:sequence>
        <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="Path" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:minLength value="1"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
    </xs:complexType>
  </xs:element>

  <xs:element name="Port">
    <xs:complexType>
      <!-- At most one VirtualSystem (checked by the reader), in any order with foreign elements. -->
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element ref="t:VirtualSystem"/>
        <xs:any namespace="##other" processContents="lax"/>
      </xs:choice>
      <xs:attribute name="Name" type="t:InterfaceName" use="required"/>
      <xs:attribute name="Type" type="t:PortType" default="tap"/>
      <xs:attribute name="Profile" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:minLength value="1"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="MTU" type="t:MTU" default="1500"/>
      <xs:attribute name="MACAddress" type="t:MAC"/>
      <xs:attribute name="Adopt" type="xs:boolean" default="false"/>
      <!-- Type="tap": IFF_VNET_HDR with checksum and TSO offloads (64 KB TCP super-frames). -->
      <xs:attribute name="Offload" type="xs:boolean"/>
      <!-- Type="netdev": the existing interface attached through AF_PACKET rings. -->
      <xs:attribute name="Interface" type="t:InterfaceName"/>
    </xs:complexType>
  </xs:element>

  <xs:element name="VirtualSystem">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element name="Address" type="xs:token"/>
        <xs:any namespace="##other" processContents="lax"/>
      </xs:choice>
      <xs:attribute name="Namespace" type="t:NamespaceName" use="required"/>
      <xs:attribute name="InterfaceName" type="t:InterfaceName" default="eth0"/>
      <xs:attribute name="MACAddress" type="t:MAC" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>

"""#
}
