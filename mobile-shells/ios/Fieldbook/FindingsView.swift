// Findings: the open ones in the user's areas with evidence photos, and the
// sheet that raises one from an inspection.
import SwiftUI

struct FindingsView: View {
    @EnvironmentObject var model: AppModel
    @Environment(\.dismiss) private var dismiss
    @State private var items: [FindingItem] = []
    @State private var photo: PhotoTarget?

    var body: some View {
        NavigationStack {
            List(items, id: \.id) { f in
                VStack(alignment: .leading, spacing: 4) {
                    Text(f.title).font(.headline)
                    if let d = f.description { Text(d) }
                    Text([f.statusLabel, f.deadline, f.responsible].compactMap { $0 }.joined(separator: " · "))
                        .font(.caption)
                    if f.overdue { Text("Overdue").foregroundStyle(.red) }
                    Button { photo = PhotoTarget(findingId: f.id) } label: {
                        Label("Take photo (\(f.photos.count) so far)", systemImage: "camera")
                    }
                    .buttonStyle(.borderless)
                    .disabled(!CameraPicker.available)
                }
            }
            .navigationTitle("Findings")
            .toolbar { Button("Done") { dismiss() } }
            .task { items = await model.findings() }
            .fullScreenCover(item: $photo) { target in
                CameraPicker { jpeg in
                    photo = nil
                    guard let jpeg, let id = target.findingId else { return }
                    Task {
                        await model.attachFindingPhoto(jpeg, findingId: id)
                        items = await model.findings()
                    }
                }
                .ignoresSafeArea()
            }
        }
    }
}

struct RaiseFindingView: View {
    @EnvironmentObject var model: AppModel
    @Environment(\.dismiss) private var dismiss
    @State private var title = ""
    @State private var text = ""
    @State private var hasDeadline = false
    @State private var deadline = Date()
    private let siteId: String
    private let inspectionId: String?

    init(siteId: String, inspectionId: String?) {
        self.siteId = siteId
        self.inspectionId = inspectionId
    }

    var body: some View {
        NavigationStack {
            Form {
                TextField("Problem", text: $title)
                TextField("Description", text: $text, axis: .vertical).lineLimit(3...8)
                Toggle("Rectification deadline", isOn: $hasDeadline)
                if hasDeadline { DatePicker("Deadline", selection: $deadline, displayedComponents: .date) }
                if let m = model.message { Text(m.text).foregroundStyle(.red) }
            }
            .navigationTitle("Raise finding")
            .toolbar {
                ToolbarItem(placement: .cancellationAction) { Button("Cancel") { dismiss() } }
                ToolbarItem(placement: .confirmationAction) {
                    Button("Raise") {
                        let input = NewFindingInput(
                            inspectionId: inspectionId,
                            siteId: siteId,
                            title: title,
                            description: text,
                            deadline: hasDeadline ? DateField.format.string(from: deadline) : nil
                        )
                        Task { if await model.raiseFinding(input) { dismiss() } }
                    }
                }
            }
        }
    }
}
