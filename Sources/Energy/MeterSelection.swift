/// Which meter to use (a recipe's `energy.meter`).
public enum MeterKind: String, Sendable, CaseIterable {
  /// RAPL where readable, else the estimate with one warning that says why.
  case auto
  /// RAPL or an error.
  case rapl
  /// The CPU-time estimate.
  case estimate
}

/// The meter chosen for a run, and why it is not RAPL when it is not.
public struct SelectedMeter {
  public var meter: any EnergyMeter
  /// Why RAPL was not used (`auto` only); nil when RAPL is used or the estimate was asked for.
  public var raplUnavailable: EnergyError?

  /// The one warning `auto` gives when it falls back: why, and how to enable RAPL.
  public var warning: String? {
    raplUnavailable.map {
      "energy: RAPL cannot be read: \($0). Using the CPU-time estimate instead (\(meter.summary)); "
        + "every energy figure of this run is labelled 'estimate'"
    }
  }
}

/// Opens the meter `kind` asks for. `rapl` throws the `EnergyError` that stops RAPL; `auto`
/// falls back to `EstimateMeter(wattsPerCore:)` and says why in `raplUnavailable`.
public func openMeter(
  _ kind: MeterKind, wattsPerCore: Double? = nil, root: String = powercapRoot(),
  files: any PowercapFiles = SystemPowercapFiles(), backgroundSampling: Bool = true
) throws -> SelectedMeter {
  let estimate = { EstimateMeter(wattsPerCore: wattsPerCore ?? EstimateMeter.defaultWattsPerCore) }
  switch kind {
  case .estimate:
    return SelectedMeter(meter: estimate(), raplUnavailable: nil)
  case .rapl:
    return SelectedMeter(
      meter: try RAPLMeter(
        root: root, files: files, backgroundSampling: backgroundSampling,
        wattsPerCore: wattsPerCore ?? EstimateMeter.defaultWattsPerCore),
      raplUnavailable: nil)
  case .auto:
    do {
      return SelectedMeter(
        meter: try RAPLMeter(
          root: root, files: files, backgroundSampling: backgroundSampling,
          wattsPerCore: wattsPerCore ?? EstimateMeter.defaultWattsPerCore),
        raplUnavailable: nil)
    } catch let error as EnergyError {
      return SelectedMeter(meter: estimate(), raplUnavailable: error)
    }
  }
}
