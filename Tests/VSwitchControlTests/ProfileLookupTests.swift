// ProfileLookup (the daemon's ID → profile dictionaries) answers exactly as ProfileSet.profile(id:), the list
// scan it replaces: exact IDs first, then UUID-shaped IDs case-insensitively, the first profile in document
// order winning in both.

import VSwitchPolicy
import VSwitchProfiles
@testable import VSwitchDaemon
import XCTest

final class ProfileLookupTests: XCTestCase {
    func testAnswersAsTheListScan() {
        let uuid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
        func profile(_ id: String, _ name: String) -> PortProfile {
            PortProfile(id: id, idType: .uri, elementName: name, instanceID: "i-" + name)
        }
        // Duplicates (exact and by case) on purpose: the first in document order must win in both paths.
        let set = ProfileSet(profiles: [
            profile("urn:a", "a1"), profile("urn:b", "b1"), profile("urn:a", "a2"),
            profile(uuid.uppercased(), "u1"), profile(uuid, "u2"), profile("URN:A", "A1"),
            profile("6BA7B810-9DAD-11D1-80B4-00C04FD430C9", "v1"),
        ])
        let lookup = ProfileLookup(set)
        let asked = ["urn:a", "URN:A", "urn:A", "urn:b", "urn:c", "", uuid, uuid.uppercased(),
                     "6Ba7b810-9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c9",
                     "6ba7b810-9dad-11d1-80b4-00c04fd430ca", "i-a1", "a1"]
        for id in asked {
            XCTAssertEqual(lookup.profile(id: id)?.elementName, set.profile(id: id)?.elementName, id)
        }
        // Not vacuous: the cases above reach every branch.
        XCTAssertEqual(lookup.profile(id: "urn:a")?.elementName, "a1")
        XCTAssertEqual(lookup.profile(id: "URN:A")?.elementName, "A1")
        XCTAssertEqual(lookup.profile(id: uuid)?.elementName, "u2")
        XCTAssertEqual(lookup.profile(id: "6Ba7b810-9dad-11d1-80b4-00c04fd430c8")?.elementName, "u1")
        XCTAssertEqual(lookup.profile(id: "6ba7b810-9dad-11d1-80b4-00c04fd430c9")?.elementName, "v1")
        XCTAssertNil(lookup.profile(id: "urn:c"))
        XCTAssertNil(ProfileLookup(ProfileSet()).profile(id: "urn:a"))
    }
}
