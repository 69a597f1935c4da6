// The XSDs of form 1, compiled into the module so that validation never depends on finding a resource bundle at run time.
// Generated from the .xsd files named below: edit those, then paste them here verbatim
// (a test fails until the two are identical).

enum EmbeddedSchemas {
    /// VSwitchProfiles/Schema/port-profiles.xsd
    static let portProfiles = #"""
<?xml version="1.0" encoding="UTF-8"?>
<!--
  VSwitch port-profile file, form 1 (shared/spec/port-profile.md):

    <vsx:NetworkPortProfiles FormatVersion="1.0"
        xmlns:vsx="urn:vswitch:port-profile:1"
        xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
        xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData">
      <ovf:NetworkPortProfile>
        <ovf:Item>
          <epasd:…/>  DMTF EPASD properties (epasd.xsd), alphabetical when written
          <vsx:…/>    the extensions below, after them
        </ovf:Item>
      </ovf:NetworkPortProfile>
    </vsx:NetworkPortProfiles>

  The XSD checks structure and types; the reader (VSwitchProfiles) checks the semantic rules
  (ID validity and uniqueness, VLAN mode consistency, paired arrays, bandwidth, ACLs).
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:vsx="urn:vswitch:port-profile:1"
           xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
           targetNamespace="urn:vswitch:port-profile:1"
           elementFormDefault="qualified" attributeFormDefault="unqualified">

  <xs:import namespace="http://schemas.dmtf.org/ovf/envelope/2" schemaLocation="ovf-network-port-profile.xsd"/>
  <xs:import namespace="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
             schemaLocation="epasd.xsd"/>

  <!-- The document root. -->
  <xs:element name="NetworkPortProfiles">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="ovf:NetworkPortProfile" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="FormatVersion" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:token">
            <xs:enumeration value="1.0"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
    </xs:complexType>
  </xs:element>

  <!-- Simple types. -->
  <xs:simpleType name="VID">
    <xs:restriction base="xs:unsignedShort">
      <xs:minInclusive value="1"/>
      <xs:maxInclusive value="4094"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PCP">
    <xs:restriction base="xs:unsignedByte">
      <xs:maxInclusive value="7"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MAC">
    <xs:restriction base="xs:token">
      <xs:pattern value="[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{12}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="FrameTypes">
    <xs:restriction base="xs:unsignedShort">
      <xs:enumeration value="2"/>  <!-- accept all -->
      <xs:enumeration value="3"/>  <!-- tagged only -->
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PriorityViolationAction">
    <xs:restriction base="xs:token">
      <xs:enumeration value="Remark"/>
      <xs:enumeration value="Drop"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MACLimitAction">
    <xs:restriction base="xs:token">
      <xs:enumeration value="Drop"/>
      <xs:enumeration value="ForwardUnlearned"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MonitorRole">
    <xs:restriction base="xs:token">
      <xs:enumeration value="None"/>
      <xs:enumeration value="Source"/>
      <xs:enumeration value="Destination"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AclAction">
    <xs:restriction base="xs:token">
      <xs:enumeration value="Allow"/>
      <xs:enumeration value="Deny"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AclDirection">
    <xs:restriction base="xs:token">
      <xs:enumeration value="Inbound"/>
      <xs:enumeration value="Outbound"/>
      <xs:enumeration value="Both"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="EtherType">
    <xs:restriction base="xs:token">
      <xs:pattern value="0[xX][0-9A-Fa-f]{1,4}|[0-9]{1,5}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PortRange">
    <xs:restriction base="xs:token">
      <xs:pattern value="[0-9]{1,5}(-[0-9]{1,5})?"/>
    </xs:restriction>
  </xs:simpleType>

  <!-- VLANs. -->
  <xs:element name="TrunkedVLANList" type="vsx:VID"/>
  <xs:element name="TrunkedVLANRange">
    <xs:complexType>
      <xs:attribute name="First" type="vsx:VID" use="required"/>
      <xs:attribute name="Last" type="vsx:VID" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Dot1qAcceptableVLANFramesTypes" type="vsx:FrameTypes"/>
  <xs:element name="NativeVLANEgressTagged" type="xs:boolean"/>

  <!-- Priorities, bandwidth, MAC learning, storm control. -->
  <xs:element name="PriorityViolationAction" type="vsx:PriorityViolationAction"/>
  <xs:element name="TransmitBurstSize" type="xs:unsignedLong"/>
  <xs:element name="ReceiveBurstSize" type="xs:unsignedLong"/>
  <xs:element name="MaxNumMACAddress" type="xs:unsignedInt"/>
  <xs:element name="MACLimitAction" type="vsx:MACLimitAction"/>
  <xs:element name="BroadcastStormLimit" type="xs:unsignedLong"/>
  <xs:element name="MulticastStormLimit" type="xs:unsignedLong"/>
  <xs:element name="UnknownUnicastStormLimit" type="xs:unsignedLong"/>

  <!-- Monitoring, guards, ACLs. -->
  <xs:element name="MonitorMode">
    <xs:complexType>
      <xs:simpleContent>
        <xs:extension base="vsx:MonitorRole">
          <xs:attribute name="Session" type="xs:token"/>
        </xs:extension>
      </xs:simpleContent>
    </xs:complexType>
  </xs:element>
  <xs:element name="EnableDhcpGuard" type="xs:boolean"/>
  <xs:element name="EnableRouterGuard" type="xs:boolean"/>
  <xs:element name="InboundAclDefaultAction" type="vsx:AclAction"/>
  <xs:element name="OutboundAclDefaultAction" type="vsx:AclAction"/>
  <xs:element name="Acl">
    <xs:complexType>
      <xs:attribute name="Name" type="xs:string" use="required"/>
      <xs:attribute name="Direction" type="vsx:AclDirection" use="required"/>
      <xs:attribute name="Action" type="vsx:AclAction" use="required"/>
      <xs:attribute name="Weight" type="xs:unsignedInt" use="required"/>
      <xs:attribute name="LocalMACAddress" type="vsx:MAC"/>
      <xs:attribute name="RemoteMACAddress" type="vsx:MAC"/>
      <xs:attribute name="EtherType" type="vsx:EtherType"/>
      <xs:attribute name="VLANID" type="vsx:VID"/>
      <xs:attribute name="Priority" type="vsx:PCP"/>
      <xs:attribute name="LocalIPAddress" type="xs:token"/>
      <xs:attribute name="RemoteIPAddress" type="xs:token"/>
      <xs:attribute name="Protocol" type="xs:token"/>
      <xs:attribute name="LocalPort" type="vsx:PortRange"/>
      <xs:attribute name="RemotePort" type="vsx:PortRange"/>
      <xs:attribute name="ICMPType" type="xs:unsignedByte"/>
      <xs:attribute name="ICMPCode" type="xs:unsignedByte"/>
    </xs:complexType>
  </xs:element>
</xs:schema>

"""#

    /// VSwitchProfiles/Schema/ovf-network-port-profile.xsd
    static let ovfNetworkPortProfile = #"""
<?xml version="1.0" encoding="UTF-8"?>
<!--
  The part of OVF 2.0 (DSP8023) that a VSwitch profile file uses: ovf:NetworkPortProfile holding
  exactly one ovf:Item. The Item's children are EPASD properties (epasd.xsd) followed by VSwitch
  extensions (port-profiles.xsd); any order is accepted on input, so the content model is an open
  sequence validated laxly: every declared epasd/vsx element is type-checked, and the reader
  refuses unknown epasd/ovf/vsx elements and warns about foreign ones.
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
           targetNamespace="http://schemas.dmtf.org/ovf/envelope/2"
           elementFormDefault="qualified" attributeFormDefault="unqualified">

  <xs:complexType name="Item_Type">
    <xs:sequence>
      <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>

  <!-- Exactly one ovf:Item (checked by the reader); elements of other namespaces are ignored. -->
  <xs:complexType name="NetworkPortProfile_Type">
    <xs:choice maxOccurs="unbounded">
      <xs:element name="Item" type="ovf:Item_Type"/>
      <xs:any namespace="##other" processContents="lax"/>
    </xs:choice>
    <xs:anyAttribute namespace="##any" processContents="lax"/>
  </xs:complexType>

  <xs:element name="NetworkPortProfile" type="ovf:NetworkPortProfile_Type"/>
</xs:schema>

"""#

    /// VSwitchProfiles/Schema/epasd.xsd
    static let epasd = #"""
<?xml version="1.0" encoding="UTF-8"?>
<!--
  The CIM_EthernetPortAllocationSettingData (EPASD) properties that VSwitch implements, in the
  WS-CIM encoding (one element per property, an array property is the element repeated,
  xsi:nil="true" = NULL). A subset of the DMTF class; the switch refuses any other EPASD element.
  Value ranges here mirror the semantic checks of VSwitchProfiles (which give the friendlier
  messages); see shared/spec/port-profile.md.
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
           targetNamespace="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
           elementFormDefault="qualified" attributeFormDefault="unqualified">

  <xs:simpleType name="VID">
    <xs:restriction base="xs:unsignedShort">
      <xs:minInclusive value="1"/>
      <xs:maxInclusive value="4094"/>
    </xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="PCP">
    <xs:restriction base="xs:unsignedShort">
      <xs:maxInclusive value="7"/>
    </xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="MAC">
    <xs:restriction base="xs:token">
      <xs:pattern value="[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{12}"/>
    </xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="EndpointMode">
    <xs:restriction base="xs:unsignedShort">
      <xs:enumeration value="2"/>  <!-- Access -->
      <xs:enumeration value="5"/>  <!-- Trunk -->
      <xs:enumeration value="6"/>  <!-- Dot1Q Tunnel -->
    </xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="ProfileIDType">
    <xs:restriction base="xs:unsignedShort">
      <xs:enumeration value="1"/>  <!-- Other -->
      <xs:enumeration value="2"/>  <!-- URI -->
      <xs:enumeration value="3"/>  <!-- UUID -->
      <xs:enumeration value="4"/>  <!-- VSI Instance ID -->
    </xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="VSITypeID">
    <xs:restriction base="xs:unsignedInt">
      <xs:maxInclusive value="16777215"/>
    </xs:restriction>
  </xs:simpleType>

  <!-- DMTF programmatic units: 'bit / second', 'bit / second * 10^3', '* 10^6' or '* 10^9' (checked by the reader). -->
  <xs:element name="AllocationUnits" type="xs:token" nillable="true"/>
  <xs:element name="AllowedPriorities" type="epasd:PCP" nillable="true"/>
  <xs:element name="AllowedToReceiveMACAddresses" type="epasd:MAC" nillable="true"/>
  <xs:element name="AllowedToReceiveVLANs" type="epasd:VID" nillable="true"/>
  <xs:element name="AllowedToTransmitMACAddresses" type="epasd:MAC" nillable="true"/>
  <xs:element name="AllowedToTransmitVLANs" type="epasd:VID" nillable="true"/>
  <xs:element name="Caption" type="xs:string" nillable="true"/>
  <xs:element name="DefaultPortVID" type="epasd:VID" nillable="true"/>
  <xs:element name="DefaultPriority" type="epasd:PCP" nillable="true"/>
  <xs:element name="Description" type="xs:string" nillable="true"/>
  <xs:element name="DesiredVLANEndpointMode" type="epasd:EndpointMode" nillable="true"/>
  <xs:element name="ElementName" type="xs:string" nillable="true"/>
  <xs:element name="GroupID" type="xs:unsignedInt" nillable="true"/>
  <xs:element name="InstanceID" type="xs:string" nillable="true"/>
  <xs:element name="Limit" type="xs:unsignedLong" nillable="true"/>
  <xs:element name="ManagerID" type="xs:string" nillable="true"/>
  <xs:element name="NetworkPortProfileID" type="xs:string" nillable="true"/>
  <xs:element name="NetworkPortProfileIDType" type="epasd:ProfileIDType" nillable="true"/>
  <xs:element name="OtherNetworkPortProfileIDTypeInfo" type="xs:string" nillable="true"/>
  <xs:element name="PortCorrelationID" type="xs:string" nillable="true"/>
  <xs:element name="PortVID" type="epasd:VID" nillable="true"/>
  <xs:element name="Promiscuous" type="xs:boolean" nillable="true"/>
  <xs:element name="ReceiveBandwidthLimit" type="xs:unsignedLong" nillable="true"/>
  <xs:element name="ReceiveBandwidthReservation" type="xs:unsignedLong" nillable="true"/>
  <xs:element name="Reservation" type="xs:unsignedLong" nillable="true"/>
  <xs:element name="SourceMACFilteringEnabled" type="xs:boolean" nillable="true"/>
  <xs:element name="VSITypeID" type="epasd:VSITypeID" nillable="true"/>
  <xs:element name="VSITypeIDVersion" type="xs:unsignedByte" nillable="true"/>
</xs:schema>

"""#
}
