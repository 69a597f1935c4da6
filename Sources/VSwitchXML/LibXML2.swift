// The one place that serialises access to libxml2 and keeps its global state untouched
// as seen from outside a call (see the module header in XMLParser.swift).

import CLibXML2
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain pthread mutex (no Foundation, no availability constraints).
final class PThreadMutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

enum LibXML2 {
    /// Held around every call into libxml2.
    static let lock = PThreadMutex()

    /// Schema documents that the entity loader may serve (name → NUL-free bytes). Only
    /// read and written with `lock` held.
    nonisolated(unsafe) static var servedDocuments: [String: [UInt8]] = [:]

    /// Runs `body` (lock held) with libxml2's thread-local structured error handler set to a
    /// sink and the external entity loader set to `servingLoader`; restores both afterwards.
    static func withIsolatedGlobals<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        xmlInitParser()
        let savedHandler = __xmlStructuredError().pointee
        let savedContext = __xmlStructuredErrorContext().pointee
        let savedLoader = xmlGetExternalEntityLoader()
        xmlSetStructuredErrorFunc(nil, discardError)
        xmlSetExternalEntityLoader(servingLoader)
        defer {
            xmlSetExternalEntityLoader(savedLoader)
            __xmlStructuredError().pointee = savedHandler
            __xmlStructuredErrorContext().pointee = savedContext
        }
        return try body()
    }
}

/// Errors that reach the global handler (none should: every context has its own collector).
private let discardError: xmlStructuredErrorFunc = { _, _ in }

/// Serves `LibXML2.servedDocuments` by the last path component of the requested URL and
/// refuses everything else: no file, no network, whatever a document asks for.
private let servingLoader: xmlExternalEntityLoader = { url, _, ctxt in
    guard let url else { return nil }
    let requested = String(cString: url)
    let name = requested.split(separator: "/").last.map(String.init) ?? requested
    guard let bytes = LibXML2.servedDocuments[name] else { return nil }
    let buffer: xmlParserInputBufferPtr? = bytes.withUnsafeBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
            xmlParserInputBufferCreateMem($0, Int32(b.count), XML_CHAR_ENCODING_NONE)  // copies
        }
    }
    guard let buffer else { return nil }
    guard let input = xmlNewIOInputStream(ctxt, buffer, XML_CHAR_ENCODING_NONE) else {
        xmlFreeParserInputBuffer(buffer)
        return nil
    }
    input.pointee.filename = UnsafePointer(strdup(requested))  // freed by libxml2 (xmlFree == free)
    return input
}
