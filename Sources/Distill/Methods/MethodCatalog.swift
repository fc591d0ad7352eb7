// What `distill methods` prints: every registered method, its keys and defaults, what it needs,
// its paper and the reference code its formulas and defaults come from.
import DistillRecipes


/// The registered distillation methods, described for people.
public enum MethodCatalog {
  /// Where a method's keys are written in a recipe.
  static func place(of info: MethodInfo, key: String) -> String {
    switch info.name {
    case "kd": return "distillation.\(key)"
    case "hint": return "distillation.hint.\(key)"
    default: return "distillation.\(info.name).\(key)"
    }
  }

  static func defaultText(_ key: MethodKey) -> String {
    if key.required { return "required" }
    if case .layers = key.defaultValue { return "auto" }
    return key.defaultValue.description
  }

  /// Plain text, one block per method.
  public static var text: String {
    var out = """
      Distillation methods (distillation.method: NAME, or a list to combine them).
      Loss = ce_weight · CE(student, labels) + the sum of each method's term.

      """
    for info in DistillationMethods.infos {
      out += "\n\(info.name): \(info.title)\n"
      out += "  paper:     \(info.paper)\n"
      out += "  reference: \(info.reference)\n"
      out += "  needs:     \(info.needs)\n"
      out += "  CE weight: " + (info.name == "kd" ? "1 − alpha" : "\(info.ceWeight)") + " (distillation.ce_weight)\n"
      let width = info.keys.map { place(of: info, key: $0.name).count }.max() ?? 0
      for key in info.keys {
        let name = place(of: info, key: key.name)
        let padded = name + String(repeating: " ", count: width - name.count)
        let requirement = key.requirement.map { "; \($0)" } ?? ""
        let value = key.required ? "required" : "default \(defaultText(key))"
        out += "  \(padded)  \(value)\(requirement). \(key.help)\n"
      }
    }
    out += """

      Shared keys:
        distillation.ce_weight  default the methods' own (the smallest of them when combined); at least 0.
        distillation.logit_standardization  default false. Logit standardisation (Sun, Ren, Li, Wang & Cao,
          Logit Standardization in Knowledge Distillation, CVPR 2024): kd and dkd compare per-sample
          z-scored logits. Reference: sunshangquan/logit-standardization-KD mdistiller/distillers/KD.py
          and DKD.py; its recipe (--base-temp 2 --kd-weight 9) is, for kd, temperature 2, alpha 9,
          ce_weight 0.1, and for dkd, dkd.temperature 2 with dkd.alpha and dkd.beta times 9.

      """
    return out
  }

  /// Plain text, one block per compression stage (`distill stages`).
  public static var stagesText: String {
    var out = """
      Compression stages (compress: a list run in order on the distilled student, each fine-tuned
      with the recipe's distillation; model file student-<label>.h5, metrics under model: <label>).

      """
    for info in CompressionStages.infos {
      out += "\n\(info.name): \(info.title)\n"
      out += "  what:      \(info.summary)\n"
      out += "  reference: \(info.reference)\n"
      let width = info.keys.map { "compress[].\(info.name).\($0.name)".count }.max() ?? 0
      for key in info.keys {
        let name = "compress[].\(info.name).\(key.name)"
        let padded = name + String(repeating: " ", count: width - name.count)
        let requirement = key.requirement.map { "; \($0)" } ?? ""
        out += "  \(padded)  default \(defaultText(key))\(requirement). \(key.help)\n"
      }
    }
    return out
  }

  /// A Markdown table, one row per method (the README and recipes/README.md carry it).
  public static var markdown: String {
    var out = "| method | paper | needs | keys (defaults) | CE weight | reference |\n| --- | --- | --- | --- | --- | --- |\n"
    for info in DistillationMethods.infos {
      let keys = info.keys.map { "`\($0.name)` \(defaultText($0))" }.joined(separator: ", ")
      let ce = info.name == "kd" ? "1 − α" : "\(info.ceWeight)"
      out += "| `\(info.name)` | \(info.paper) | \(info.needs) | \(keys) | \(ce) | \(info.reference) |\n"
    }
    out += "| `logit_standardization: true` | Sun et al., Logit Standardization in Knowledge Distillation, CVPR 2024 "
      + "| a switch on `kd` and `dkd`: per-sample z-scored logits | recipe: base temperature 2, KD weight 9 | — "
      + "| sunshangquan/logit-standardization-KD mdistiller/distillers/KD.py, DKD.py |\n"
    return out
  }
}
