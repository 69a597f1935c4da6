// libFuzzer driver for the XML loaders (issue 6, item 1a). Built by fuzz/build.sh, run by `make fuzz`.
//
// Every input is fed to both readers:
//   - ProfileLoader.load(data:fileName:) — a profile document (form 1 or OVF envelope);
//   - TopologyLoader.load(path:) — the same bytes written as topology.xml in a scratch folder that
//     also holds the profile files the seed topologies name (profiles/tenants.xml, profiles.xml, …).
// Invariants beyond "no crash, no sanitizer report, no hang":
//   - a profile document that loads survives load → write → load with equal profiles, and every
//     profile compiles (PolicyCompiler.compilePort);
//   - a topology that loads names only profiles it has, and every port's profile compiles at its MTU;
//   - a profile document loaded through a ProfileReadCache (another document's, then its own) gives
//     exactly a cold load's profiles, warnings or diagnostics, by the partial path or the full one
//     (issue 3); and the cache it leaves loads the base document as a cold load does;
//   - differential: XMLParser's streaming path (validation while parsing, StreamingParser.swift) gives
//     exactly what its DOM path gives — tree, positions, findings, errors — with the profile schema, the
//     topology schema and none (when the streaming path declines, both are the DOM path: equal anyway).
@_spi(Differential) import VSwitchProfiles
@_spi(Differential) import VSwitchTopology
@_spi(Differential) import VSwitchXML
import VSwitchPolicy
#if canImport(Glibc)
import Glibc
#endif

/// The repository root, from this file's path at build time (fuzz/ProfileFuzz.swift).
let repoRoot: String = {
    if let r = getenv("VSWITCH_REPO") { return String(cString: r) }
    var p = #filePath
    for _ in 0..<2 { if let s = p.lastIndex(of: "/") { p = String(p[..<s]) } }
    return p
}()

func readAll(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func writeAll(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else { fatalError("cannot write \(path)") }
    _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

/// Scratch folder: /tmp/vswitch-fuzz-<pid>/ with the profile files seed topologies refer to.
let scratch: String = {
    let dir = "/tmp/vswitch-fuzz-\(getpid())"
    mkdir(dir, 0o755)
    mkdir(dir + "/profiles", 0o755)
    let copies = [
        ("topologies/profiles/tenants.xml", "profiles/tenants.xml"),
        ("topologies/profiles/examples.xml", "profiles/examples.xml"),
        ("Tests/VSwitchProfilesTests/Fixtures/topology/profiles.xml", "profiles.xml"),
        ("Tests/VSwitchProfilesTests/Fixtures/topology/more-profiles.xml", "more-profiles.xml"),
        ("Tests/VSwitchProfilesTests/Fixtures/topology/clash-profiles.xml", "clash-profiles.xml"),
        ("Tests/VSwitchProfilesTests/Fixtures/topology/broken-profiles.xml", "broken-profiles.xml"),
    ]
    for (from, to) in copies {
        if let b = readAll(repoRoot + "/" + from) { writeAll(dir + "/" + to, b) }
    }
    atexit {
        let dir = "/tmp/vswitch-fuzz-\(getpid())"
        for f in ["topology.xml", "profiles/tenants.xml", "profiles/examples.xml", "profiles.xml", "more-profiles.xml",
                  "clash-profiles.xml", "broken-profiles.xml"] { unlink(dir + "/" + f) }
        rmdir(dir + "/profiles"); rmdir(dir)
    }
    return dir
}()

/// What a load gave, in full (profiles and warnings, or every diagnostic), for comparing loads.
func outcome(_ load: () throws -> ProfileSet) -> String {
    do {
        let set = try load()
        return "loaded \(set.profiles)\n" + set.warnings.map(\.description).joined(separator: "\n")
    } catch let e as ProfileLoadError {
        return "refused\n" + e.diagnostics.map(\.description).joined(separator: "\n")
    } catch {
        return "other \(error)"
    }
}

let baseDocument = readAll(repoRoot + "/topologies/profiles/tenants.xml")
let baseOutcome = baseDocument.map { b in outcome { try ProfileLoader.load(data: b, fileName: "fuzz.xml") } } ?? ""

/// The read cache of the demo profiles, which most seeds are variations of (so inputs share blocks with it;
/// an input that keeps some of them byte for byte takes the partial path, issue 3).
let baseCache: ProfileReadCache? = {
    var cache: ProfileReadCache? = nil
    if let b = readAll(repoRoot + "/topologies/profiles/tenants.xml") {
        _ = try? ProfileLoader.load(data: b, fileName: "fuzz.xml", cache: &cache)
    }
    return cache
}()

func fuzzProfiles(_ bytes: [UInt8]) {
    // Reloads (issue 3): a load through the read cache (of another document, then of this one) gives
    // exactly what a cold load gives.
    let cold = outcome { try ProfileLoader.load(data: bytes, fileName: "fuzz.xml") }
    var cache = baseCache
    let warm = outcome { try ProfileLoader.load(data: bytes, fileName: "fuzz.xml", cache: &cache) }
    let rewarm = outcome { try ProfileLoader.load(data: bytes, fileName: "fuzz.xml", cache: &cache) }
    if warm != cold || rewarm != cold {
        fatalError("a load through ProfileReadCache differs from a cold load\n--- cold ---\n\(cold)\n--- warm ---\n\(warm)\n--- again ---\n\(rewarm)")
    }
    // And the cache this input left (made by a partial or a full load, or still the base one) serves the
    // base document exactly as a cold load does — a partial load's cache holds the input's extents.
    if let base = baseDocument {
        let back = outcome { try ProfileLoader.load(data: base, fileName: "fuzz.xml", cache: &cache) }
        if back != baseOutcome {
            fatalError("the base document loads differently through the cache of an input\n--- cold ---\n\(baseOutcome)\n--- warm ---\n\(back)")
        }
    }
    guard let set = try? ProfileLoader.load(data: bytes, fileName: "fuzz.xml") else { return }
    for p in set.profiles { _ = PolicyCompiler.compilePort(p) }
    let text = ProfileWriter.write(set.profiles)
    let again: ProfileSet
    do { again = try ProfileLoader.load(data: Array(text.utf8), fileName: "export.xml") } catch {
        fatalError("a loaded profile document does not reload after ProfileWriter.write:\n\(error)\n--- export ---\n\(text)")
    }
    if again.profiles != set.profiles {
        fatalError("load → write → load changed the profiles\n--- export ---\n\(text)")
    }
}

func fuzzTopology(_ bytes: [UInt8]) {
    let path = scratch + "/topology.xml"
    writeAll(path, bytes)
    guard let t = try? TopologyLoader.load(path: path) else { return }
    for port in t.ports {
        guard let p = t.profiles.profile(id: port.profileID) else {
            fatalError("topology loaded with port \(port.name) naming an unknown profile \(port.profileID)")
        }
        _ = PolicyCompiler.compilePort(p, switchMACLimit: t.settings.maxMACsPerPort, mtu: port.mtu)
    }
}

let differentialSchemas: [(String, XMLSchema?)] = {
    var s: [(String, XMLSchema?)] = [("none", nil)]
    if case .success(let p) = ProfileSchema.compiled { s.append(("profiles", p)) }
    if case .success(let t) = TopologySchema.compiled { s.append(("topology", t)) }
    return s
}()

func fuzzStreamingAgainstDOM(_ bytes: [UInt8]) {
    for (name, schema) in differentialSchemas {
        let fast = XMLParser.describeParse(bytes: bytes, fileName: "fuzz.xml", schema: schema, streaming: true)
        let dom = XMLParser.describeParse(bytes: bytes, fileName: "fuzz.xml", schema: schema, streaming: false)
        if fast.description != dom.description {
            fatalError("the streaming parse differs from the DOM parse (schema \(name))\n--- streaming ---\n\(fast.description)\n--- DOM ---\n\(dom.description)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    fuzzProfiles(bytes)
    fuzzTopology(bytes)
    fuzzStreamingAgainstDOM(bytes)
    return 0
}
