// A compiled XSD. Built from in-memory schema texts (the main one plus the documents it
// imports or includes, looked up by file name); nothing is read from disk or network.
// Compile once and keep it: validation reuses the compiled form (under the libxml2 lock).

import CLibXML2

public final class XMLSchema: @unchecked Sendable {
    let schema: xmlSchemaPtr
    /// Namespace URI → preferred prefix, used to write `epasd:PortVID` instead of `{http://…}PortVID`
    /// in validation messages and diagnostics.
    public let prefixes: [String: String]

    /// - Parameters:
    ///   - main: file name of the main schema (a key of `documents`).
    ///   - documents: file name → schema text, for the main schema and every `schemaLocation` it uses.
    public init(main: String, documents: [String: String], prefixes: [String: String] = [:]) throws(XMLError) {
        self.prefixes = prefixes
        guard let mainText = documents[main] else {
            throw XMLError([XMLDiagnostic(file: main, line: 0, column: 0, message: "schema document not provided")])
        }
        let collector = SchemaErrorCollector(fileName: main)
        let compiled: xmlSchemaPtr? = LibXML2.lock.withLock {
            LibXML2.withIsolatedGlobals {
                LibXML2.servedDocuments = documents.mapValues { Array($0.utf8) }
                defer { LibXML2.servedDocuments = [:] }
                let bytes = Array(mainText.utf8)
                // xmlSchemaNewMemParserCtxt keeps the pointer (no copy): parse inside the buffer's scope.
                return bytes.withUnsafeBufferPointer { b -> xmlSchemaPtr? in
                    let pctxt = b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
                        xmlSchemaNewMemParserCtxt($0, Int32(b.count))
                    }
                    guard let pctxt else { return nil }
                    defer { xmlSchemaFreeParserCtxt(pctxt) }
                    xmlSchemaSetParserStructuredErrors(pctxt, schemaErrorHandler, Unmanaged.passUnretained(collector).toOpaque())
                    return xmlSchemaParse(pctxt)
                }
            }
        }
        let errors = collector.diagnostics.filter(\.isError)
        guard let compiled, errors.isEmpty else {
            if let compiled { LibXML2.lock.withLock { xmlSchemaFree(compiled) } }
            throw XMLError(errors.isEmpty
                           ? [XMLDiagnostic(file: main, line: 0, column: 0, message: "schema could not be compiled")]
                           : errors)
        }
        schema = compiled
    }

    deinit {
        let s = schema
        LibXML2.lock.withLock { xmlSchemaFree(s) }
    }
}

private final class SchemaErrorCollector {
    let fileName: String
    var diagnostics: [XMLDiagnostic] = []
    init(fileName: String) { self.fileName = fileName }
}

private let schemaErrorHandler: xmlStructuredErrorFunc = { userData, error in
    guard let userData, let error else { return }
    let collector = Unmanaged<SchemaErrorCollector>.fromOpaque(userData).takeUnretainedValue()
    let file = error.pointee.file.map { String(cString: $0) } ?? collector.fileName
    let text = error.pointee.message.map { XMLElement.trim(String(cString: $0)) } ?? "schema error"
    collector.diagnostics.append(XMLDiagnostic(error.pointee.level == XML_ERR_WARNING ? .warning : .error,
                                               file: file, line: Int(error.pointee.line), column: Int(error.pointee.int2),
                                               message: text))
}
