import Distill
import Foundation

/// Shows a run's `TrainingEvent`s: on a terminal, one line redrawn in place (epoch, batch,
/// samples/s, loss, ETA, the last epoch's validation accuracy); otherwise one plain line per
/// epoch; quiet, nothing (the command prints the final result itself). Both print a line when a
/// model starts and when it is tested.
final class ProgressDisplay {
  enum Mode {
    case terminal
    case plain
    case quiet
  }

  let mode: Mode
  /// Printed before every line, e.g. `[seed 2] `.
  let prefix: String
  private var lastDraw = Date.distantPast
  private var lineIsOpen = false
  /// On a terminal, the last epoch's validation accuracy, shown on the progress line.
  private var lastAccuracy = ""
  /// Warnings already printed, shared by the displays of one command (`--seeds` runs one
  /// display per seed): each is printed once, not once per seed.
  private let printedWarnings: PrintedWarnings

  /// The warnings a command printed so far.
  final class PrintedWarnings {
    private var seen: Set<String> = []
    /// Whether `text` is new (and so to be printed); remembers it.
    func isNew(_ text: String) -> Bool { seen.insert(text).inserted }
  }

  init(mode: Mode, prefix: String = "", printedWarnings: PrintedWarnings = PrintedWarnings()) {
    self.mode = mode
    self.prefix = prefix
    self.printedWarnings = printedWarnings
  }

  /// `.terminal` when standard output is a terminal, else `.plain`; `.quiet` when asked.
  static func mode(quiet: Bool) -> Mode {
    quiet ? .quiet : (isatty(1) != 0 ? .terminal : .plain)
  }

  func handle(_ event: TrainingEvent) {
    switch (mode, event) {
    case (_, .energyMeter(_, let summary, let warning)):
      if let warning { warn(warning) }
      if mode != .quiet { emit("energy: \(summary)") }
    case (_, .warning(let text)):
      warn(text)
    case (.quiet, _):
      return
    case (_, .modelStarted(let phase, let epochs, let parameters, let samples, let stage)):
      lastAccuracy = ""
      if let stage { emit("\(phase): \(stage)") }
      emit("\(phase): \(parameters) parameters, \(epochs) epochs over \(samples) samples")
    case (.terminal, .batch(let p)):
      let now = Date()
      guard now.timeIntervalSince(lastDraw) > 0.1 || p.batch == p.batches else { return }
      lastDraw = now
      let rate = p.epochSeconds > 0 ? Double(p.samples) / p.epochSeconds : 0
      let done = Double((p.epoch - 1) * p.batches + p.batch) / Double(max(p.epochs * p.batches, 1))
      let eta = done > 0 ? p.modelSeconds / done - p.modelSeconds : 0
      let line =
        "\(prefix)\(p.phase) epoch \(p.epoch)/\(p.epochs)  batch \(p.batch)/\(p.batches)  "
        + "\(Int(rate)) samples/s  loss \(fixed(p.loss, 4))  ETA \(clock(eta))\(lastAccuracy)"
      FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
      lineIsOpen = true
    case (_, .batch):
      return
    case (.terminal, .epoch(let r)):
      lastAccuracy = "  (epoch \(r.epoch): \(r.validationSplit) accuracy \(percent(r.validation.accuracy)))"
    case (_, .epoch(let r)):
      emit(
        "\(r.stage ?? r.model.rawValue) epoch \(r.epoch)/\(r.epochs): train loss \(fixed(r.trainLoss, 4)), "
          + "\(r.validationSplit) accuracy \(percent(r.validation.accuracy)), "
          + "loss \(fixed(r.validation.loss, 4)), "
          + "lr \(fixed(r.learningRate, 5)), \(fixed(r.seconds, 1)) s"
          + (r.joules.map { ", \(fixed($0, 1)) J (\(r.energySource ?? "?"))" } ?? "")
          + (r.figures["sparsity"].map { ", sparsity \(percent($0))" } ?? ""))
    case (_, .tested(let phase, let evaluation, let split)):
      emit(
        "\(phase) test accuracy \(percent(evaluation.accuracy)) (loss \(fixed(evaluation.loss, 4)), "
          + "\(evaluation.count) samples of the \(split) split)")
    }
  }

  /// Prints a kept line, first clearing a progress line in place.
  private func emit(_ text: String) {
    if lineIsOpen {
      FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
      lineIsOpen = false
    }
    print(prefix + text)
    fflush(nil)
  }

  /// Prints `text` as a warning on standard error, unless this command printed it already.
  private func warn(_ text: String) {
    guard printedWarnings.isNew(text) else { return }
    if lineIsOpen && mode == .terminal {
      print("")
      lineIsOpen = false
    }
    FileHandle.standardError.write(Data("warning: \(prefix)\(text)\n".utf8))
  }
}

func fixed(_ value: Double, _ digits: Int) -> String {
  value.isFinite ? String(format: "%.\(digits)f", value) : "\(value)"
}

func percent(_ fraction: Double) -> String { fixed(fraction * 100, 2) + "%" }

/// `m:ss`, or `h:mm:ss` from an hour on.
func clock(_ seconds: Double) -> String {
  guard seconds.isFinite, seconds >= 0 else { return "?" }
  let s = Int(seconds.rounded())
  return s >= 3600
    ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    : String(format: "%d:%02d", s / 60, s % 60)
}
