// IntegerRuns: runs of consecutive integers in a sorted list — VLAN lists in profile messages and
// exports, CPU lists in the daemon's placement (`2-5,8`). Control-plane only; not used per frame.

/// The maximal runs of consecutive values of a strictly ascending list: `[1, 2, 3, 7]` → `[1...3, 7...7]`.
public func consecutiveRuns<T: BinaryInteger>(_ sorted: [T]) -> [ClosedRange<T>] {
    var runs: [ClosedRange<T>] = []
    var i = 0
    while i < sorted.count {
        var j = i
        while j + 1 < sorted.count, sorted[j + 1] - sorted[j] == 1 { j += 1 }   // no overflow at the maximum
        runs.append(sorted[i]...sorted[j])
        i = j + 1
    }
    return runs
}

/// `10, 20-22, 30` (with `separator` ", "), or `0,2-5` with ",": single values alone, runs as first-last.
public func describeRuns<T: BinaryInteger>(_ sorted: [T], separator: String) -> String {
    consecutiveRuns(sorted).map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
        .joined(separator: separator)
}
