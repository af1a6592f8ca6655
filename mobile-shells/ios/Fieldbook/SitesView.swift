// The home screen: sync status, work sent back by a supervisor, drafts to
// continue, and the sites in the user's areas filtered by kind.
import SwiftUI

// A filter needs each kind's label before any site of that kind is loaded;
// the core labels only the sites themselves.
private let kinds: [(SiteKind, LocalizedStringKey)] = [
    (.ruralSewage, "Village sewage"),
    (.townshipSewagePlant, "Township sewage plant"),
    (.householdToilet, "Household toilet"),
    (.garbagePoint, "Garbage point"),
    (.tailingsPond, "Tailings pond"),
    (.sewageOutfall, "Sewage outfall"),
    (.blackOdorousWater, "Black-odorous water"),
]

struct SitesView: View {
    @EnvironmentObject var model: AppModel
    @State private var returned: [InspectionItem] = []
    @State private var findings = false
    @Binding private var relogin: Bool
    private let kind: SiteKind?
    private let sites: [SiteItem]
    private let recent: [InspectionItem]

    init(kind: SiteKind?, sites: [SiteItem], recent: [InspectionItem], relogin: Binding<Bool>) {
        self.kind = kind
        self.sites = sites
        self.recent = recent
        _relogin = relogin
    }

    var body: some View {
        // Inspection rows carry only the site id; name them from the list.
        let names = Dictionary(sites.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let waiting = model.sync.pending.map { $0.changes + $0.photos } ?? 0
        List {
            Section { SyncPanel(relogin: $relogin) }
            Section {
                ScrollView(.horizontal, showsIndicators: false) {
                    HStack {
                        chip("All", selected: kind == nil) { await model.showSites(nil) }
                        ForEach(kinds.indices, id: \.self) { i in
                            chip(kinds[i].1, selected: kind == kinds[i].0) { await model.showSites(kinds[i].0) }
                        }
                    }
                }
            }
            inspections("Returned to you", returned, names)
            inspections("Drafts", recent.filter { $0.status == .draft }, names)
            Section("Sites") {
                ForEach(sites, id: \.id) { site in
                    Button {
                        Task { await model.startInspection(siteId: site.id) }
                    } label: {
                        VStack(alignment: .leading) {
                            Text(site.name)
                            Text([site.kindLabel, site.place ?? site.villageCode].joined(separator: " · "))
                                .font(.caption).foregroundStyle(.secondary)
                        }
                    }
                }
            }
        }
        .navigationTitle(model.account?.user ?? "Fieldbook")
        .toolbar {
            ToolbarItemGroup(placement: .navigationBarTrailing) {
                Button("Findings") { findings = true }
                Button {
                    if model.syncDecision(Conditions.current()) == .loginFirst {
                        relogin = true
                    } else {
                        // A tap is the user's decision to sync now.
                        Task { await model.syncNow() }
                    }
                } label: {
                    Image(systemName: "arrow.triangle.2.circlepath").overlay(alignment: .topTrailing) {
                        if waiting > 0 {
                            Text("\(waiting)").font(.caption2).foregroundStyle(.white)
                                .padding(3).background(.red, in: Capsule()).offset(x: 10, y: -10)
                        }
                    }
                }
                .disabled(model.sync.running)
                Menu {
                    Button("Log out", role: .destructive) { Task { await model.logout() } }
                } label: {
                    Image(systemName: "person.crop.circle")
                }
            }
        }
        .sheet(isPresented: $findings) { FindingsView() }
        .task(id: recent) { returned = await model.returned() }
    }

    private func chip(_ label: LocalizedStringKey, selected: Bool, action: @escaping () async -> Void) -> some View {
        Button(label) { Task { await action() } }
            .buttonStyle(.bordered)
            .tint(selected ? Color.accentColor : Color.gray)
    }

    @ViewBuilder
    private func inspections(_ title: LocalizedStringKey, _ rows: [InspectionItem], _ names: [String: String]) -> some View {
        if !rows.isEmpty {
            Section(title) {
                ForEach(rows, id: \.id) { i in
                    Button {
                        Task { await model.open(i.id) }
                    } label: {
                        HStack {
                            VStack(alignment: .leading) {
                                Text(names[i.siteId] ?? i.villageCode)
                                Text("\(i.statusLabel) · \(i.answered) · \(i.photos)").font(.caption).foregroundStyle(.secondary)
                            }
                            Spacer()
                            if i.conflicts > 0 { Text("\(i.conflicts) conflicts").foregroundStyle(.orange) }
                        }
                    }
                }
            }
        }
    }
}

private struct SyncPanel: View {
    @EnvironmentObject var model: AppModel
    @Binding var relogin: Bool

    var body: some View {
        let sync = model.sync
        VStack(alignment: .leading, spacing: 4) {
            if model.account?.loginRequired == true {
                Button("Login expired: log in again to sync") { relogin = true }.foregroundStyle(.red)
            }
            if let p = sync.pending {
                Text("Waiting: \(p.changes) changes, \(p.photos) photos")
                if p.rejections > 0 { Text("Refused by the server: \(p.rejections)").foregroundStyle(.red) }
            }
            if sync.running {
                ProgressView()
                if let p = sync.progress { Text("Syncing: \(p.recordsUp) up, \(p.recordsDown) down, \(p.pending) left") }
            } else if let last = sync.last, let at = sync.history.lastSuccessMs {
                let when = Date(timeIntervalSince1970: TimeInterval(at) / 1000)
                Text("Last sync \(when, style: .relative) ago: \(last.progress.recordsUp) up, \(last.progress.recordsDown) down, \(last.photosUploaded) photos")
            }
        }
        .font(.callout)
        .buttonStyle(.borderless)
    }
}
