// The checklist of one inspection, drawn from FormState. Which rows exist,
// what is wrong with them and whether the form can be submitted come from
// the core; this file picks a control per field kind and hands what the
// user entered to AppModel.answer.
import SwiftUI

struct ChecklistView: View {
    @EnvironmentObject var model: AppModel
    @StateObject private var gps = LocationFix()
    @State private var locating = false
    @State private var photo: PhotoTarget?
    @State private var raising = false
    @State private var note = ""
    private let detail: InspectionDetail
    private let form: FormState

    init(detail: InspectionDetail, form: FormState) {
        self.detail = detail
        self.form = form
    }

    var body: some View {
        Form {
            Section {
                Text([detail.siteName, detail.statusLabel].compactMap { $0 }.joined(separator: " · "))
                location
                Button { photo = PhotoTarget() } label: {
                    Label("Take photo (\(detail.photos.count) so far)", systemImage: "camera")
                }
                .disabled(!form.editable || !CameraPicker.available)
                Button("Raise finding") { raising = true }
                // Supervisors' comments, e.g. why the inspection was returned.
                ForEach(detail.timeline.filter { $0.comment != nil }, id: \.atMs) { t in
                    Text("\(t.label) · \(t.author): \(t.comment ?? "")").foregroundStyle(.purple)
                }
                ForEach(form.recordProblems, id: \.self) { Text($0).foregroundStyle(.red) }
            }
            ForEach(form.rows) { row in
                Section {
                    FieldRow(row: row, editable: form.editable) { photo = PhotoTarget(field: row.id) }
                }
            }
            Section("Notes") {
                ForEach(detail.notes, id: \.self) { n in Text("\(n.author): \(n.text)") }
                if form.editable {
                    HStack {
                        TextField("Note", text: $note)
                        Button("Add") {
                            let text = note
                            note = ""
                            Task { await model.addNote(text) }
                        }
                        .disabled(note.trimmed.isEmpty)
                    }
                }
            }
            Button("Submit") { Task { await model.submit() } }.disabled(!form.canSubmit)
        }
        .buttonStyle(.borderless) // several buttons share a row; each must only fire itself
        .navigationTitle(detail.title)
        .toolbar {
            ToolbarItem(placement: .navigationBarLeading) {
                Button("Back") { Task { await model.backToSites() } }
            }
        }
        .fullScreenCover(item: $photo) { target in
            CameraPicker { jpeg in
                photo = nil
                if let jpeg { Task { await model.attachPhoto(jpeg, field: target.field) } }
            }
            .ignoresSafeArea()
        }
        .sheet(isPresented: $raising) { RaiseFindingView(siteId: detail.siteId, inspectionId: detail.id) }
    }

    @ViewBuilder
    private var location: some View {
        if locating {
            if let fix = gps.best {
                Text(String(format: "%.6f, %.6f  ±%.0f m", fix.lat, fix.lon, fix.accuracyM))
                if fix.mock { Text("This fix comes from a simulated source and will be flagged").foregroundStyle(.red) }
                Button("Use this fix") {
                    gps.stop()
                    locating = false
                    Task { await model.setLocation(fix) }
                }
            } else {
                ProgressView(gps.denied ? "Location permission is needed" : "Waiting for a fix…")
            }
        } else {
            HStack {
                Text(detail.location.map { String(format: "±%.0f m", $0.accuracyM) } ?? "No location yet")
                Spacer()
                Button("Locate") {
                    locating = true
                    gps.start()
                }
                .disabled(!form.editable)
            }
        }
    }
}

private struct FieldRow: View {
    @EnvironmentObject var model: AppModel
    let row: FormRow
    let editable: Bool
    let takePhoto: () -> Void

    var body: some View {
        let f = row.field
        VStack(alignment: .leading, spacing: 6) {
            Text(f.required ? "\(f.label) *" : f.label).font(.headline)
            if let help = f.help { Text(help).font(.caption).foregroundStyle(.secondary) }
            input(f)
            if !row.conflicts.isEmpty {
                Text("Other phones entered different values; pick one:").font(.footnote).foregroundStyle(.orange)
                ForEach(([row.text] + row.conflicts).uniqued(), id: \.self) { value in
                    Button(shown(f, value)) { answer(value) }
                }
            }
            if let problem = row.problem { Text(problem).font(.footnote).foregroundStyle(.red) }
        }
        .disabled(!editable)
    }

    @ViewBuilder
    private func input(_ f: TemplateField) -> some View {
        switch f.kind {
        case .yesNo:
            Picker(f.label, selection: Binding(get: { row.text }, set: answer)) {
                Text("Yes").tag("yes")
                Text("No").tag("no")
            }
            .pickerStyle(.segmented)
        case .choice:
            ForEach(f.options, id: \.key) { o in
                Button { answer(o.key) } label: {
                    Label(o.label, systemImage: row.text == o.key ? "largecircle.fill.circle" : "circle")
                }
            }
        case .number:
            HStack {
                CommitField(saved: row.text, vertical: false, keyboard: f.integer ? .numberPad : .decimalPad, maxLen: nil, commit: answer)
                if let unit = f.unit { Text(unit) }
            }
        case .text:
            CommitField(saved: row.text, vertical: true, keyboard: .default, maxLen: f.maxLen, commit: answer)
        case .date:
            DateField(saved: row.text, commit: answer)
        case .photo:
            if let hint = f.photoHint { Text(hint).font(.caption) }
            Button(action: takePhoto) {
                Label("Take photo (\(row.photos) / \(row.photosWanted))", systemImage: "camera")
            }
            .disabled(!CameraPicker.available)
        }
    }

    private func shown(_ f: TemplateField, _ value: String) -> String {
        switch f.kind {
        case .yesNo: return value == "yes" ? "Yes" : "No"
        case .choice: return f.options.first { $0.key == value }?.label ?? value
        default: return value
        }
    }

    private func answer(_ text: String) { Task { await model.answer(row.id, text) } }
}

/// A text input that saves when the user leaves it or presses return, not
/// on every keystroke: each save is a durable write and a form reload.
private struct CommitField: View {
    private let saved: String
    private let vertical: Bool
    private let keyboard: UIKeyboardType
    private let maxLen: UInt32?
    private let commit: (String) -> Void
    @State private var text = ""
    @FocusState private var focused: Bool

    init(saved: String, vertical: Bool, keyboard: UIKeyboardType, maxLen: UInt32?, commit: @escaping (String) -> Void) {
        self.saved = saved
        self.vertical = vertical
        self.keyboard = keyboard
        self.maxLen = maxLen
        self.commit = commit
    }

    var body: some View {
        VStack(alignment: .trailing) {
            TextField("", text: $text, axis: vertical ? .vertical : .horizontal)
                .lineLimit(vertical ? 3...8 : 1...1)
                .keyboardType(keyboard)
                .textFieldStyle(.roundedBorder)
                .focused($focused)
                .onSubmit(save)
            if let maxLen { Text("\(text.count) / \(maxLen)").font(.caption2).foregroundStyle(.secondary) }
        }
        .onAppear { text = saved }
        // A refused input stays visible to correct; an accepted one shows
        // as the core normalised it.
        .onChange(of: saved) { text = $0 }
        // Number pads have no return key: leaving the field saves.
        .onChange(of: focused) { if !$0 { save() } }
    }

    private func save() { if text != saved { commit(text) } }
}

/// Dates as the core stores them, `YYYY-MM-DD`.
struct DateField: View {
    let saved: String
    let commit: (String) -> Void

    static let format: DateFormatter = {
        let f = DateFormatter()
        f.calendar = Calendar(identifier: .gregorian)
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd"
        return f
    }()

    var body: some View {
        if let date = Self.format.date(from: saved) {
            DatePicker("", selection: Binding(get: { date }, set: { commit(Self.format.string(from: $0)) }), displayedComponents: .date)
                .labelsHidden()
        } else {
            Button("Choose a date") { commit(Self.format.string(from: Date())) }
        }
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
