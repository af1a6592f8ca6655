// The app's screen state and the actions behind its buttons, over the
// generated Swift bindings. The Swift counterpart of the shared Kotlin
// AppModel.kt, Form.kt and Messages.kt, cut to what the screens use: every
// rule (visibility, validation, what blocks a submission) still comes from
// the core. Store calls run off the main thread; failures land in
// `message` with the next step for the user.
import Foundation
import SwiftUI

enum Screen {
    case loading
    case login(server: String, user: String, userFixed: Bool)
    case sites(kind: SiteKind?, sites: [SiteItem], recent: [InspectionItem])
    case inspection(InspectionDetail, TemplateInfo, FormState)
}

enum NextStep { case fixInput, notAllowed, logIn, retryLater, freeSpace, recover, report }

struct UserMessage: Identifiable {
    let id = UUID()
    var text: String
    var next: NextStep
    /// Field key -> message, shown beside the field.
    var fields: [String: String] = [:]
}

extension UserMessage {
    init(_ error: Error) {
        switch error {
        case let ApiError.InvalidInput(reason, problems):
            var fields: [String: String] = [:]
            for p in problems where !p.field.isEmpty {
                fields[p.field] = fields[p.field].map { "\($0); \(p.message)" } ?? p.message
            }
            self.init(text: reason, next: .fixInput, fields: fields)
        case let ApiError.NotAllowed(reason): self.init(text: reason, next: .notAllowed)
        case let ApiError.LoginRequired(reason): self.init(text: reason, next: .logIn)
        case let ApiError.RetryLater(reason): self.init(text: reason, next: .retryLater)
        case let ApiError.StorageFull(reason): self.init(text: reason, next: .freeSpace)
        case let ApiError.Damaged(reason): self.init(text: reason, next: .recover)
        case let ApiError.Other(reason): self.init(text: reason, next: .report)
        default: self.init(text: error.localizedDescription, next: .report)
        }
    }
}

struct FormRow: Identifiable {
    let field: TemplateField
    /// The stored answer as input text ("" when unanswered).
    let text: String
    /// Values written concurrently on other phones; the user picks one.
    let conflicts: [String]
    let photos: Int
    let photosWanted: Int
    /// The core's word on this field: last refused input, or what still
    /// blocks submitting.
    let problem: String?
    var id: String { field.key }
}

struct FormState {
    let rows: [FormRow]
    let recordProblems: [String]
    let editable: Bool
    let canSubmit: Bool

    init(template: TemplateInfo, detail: InspectionDetail, refused: [String: String]) {
        let states = Dictionary(detail.fields.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let problems = Dictionary(grouping: detail.problems, by: \.field)
        rows = template.fields.compactMap { f in
            let s = states[f.key]
            if let s, !s.visible { return nil }
            return FormRow(
                field: f,
                text: Answers.text(s?.value),
                conflicts: (s?.conflicts ?? []).map { Answers.text($0) },
                photos: Int(s?.photos ?? 0),
                photosWanted: Int(f.photosMin),
                problem: refused[f.key] ?? problems[f.key]?.map(\.message).joined(separator: "; ")
            )
        }
        let shown = Set(rows.map(\.id))
        recordProblems = detail.problems.filter { !shown.contains($0.field) }.map(\.message)
        editable = detail.editable
        canSubmit = detail.editable && detail.problems.isEmpty
    }
}

struct InputError: Error { let message: String }

/// Typed text to answers and back. Ranges and option keys are the core's
/// to check when the answer is saved.
enum Answers {
    static func parse(_ f: TemplateField, _ text: String) -> Result<FieldValue, InputError> {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch f.kind {
        case .yesNo:
            switch t.lowercased() {
            case "yes", "true", "是", "1": return .success(.yesNo(value: true))
            case "no", "false", "否", "0": return .success(.yesNo(value: false))
            default: return .failure(InputError(message: "answer yes or no"))
            }
        case .number:
            if let v = Double(t.replacingOccurrences(of: ",", with: ".")), v.isFinite { return .success(.number(value: v)) }
            return .failure(InputError(message: "enter a number"))
        case .choice:
            if let o = f.options.first(where: { $0.key == t || $0.label == t }) { return .success(.text(value: o.key)) }
            return .failure(InputError(message: "pick one of the options"))
        case .text, .date: return .success(.text(value: t))
        case .photo: return .failure(InputError(message: "take a photo instead"))
        }
    }

    static func text(_ value: FieldValue?) -> String {
        switch value {
        case nil: return ""
        case let .yesNo(v)?: return v ? "yes" : "no"
        case let .number(v)?: return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
        case let .text(v)?: return v
        }
    }
}

struct SyncStatus {
    var running = false
    var progress: SyncProgress?
    var pending: PendingInfo?
    var last: SyncReport?
    var history = SyncHistory()
}

/// Hands sync progress from the core's thread to the main actor.
final class ProgressRelay: SyncListener {
    let report: @Sendable (SyncProgress) -> Void
    init(_ report: @escaping @Sendable (SyncProgress) -> Void) { self.report = report }
    func onProgress(progress: SyncProgress) { report(progress) }
}

@MainActor
final class AppModel: ObservableObject {
    @Published private(set) var screen: Screen = .loading
    @Published private(set) var account: AccountInfo?
    @Published private(set) var sync = SyncStatus()
    @Published var message: UserMessage?
    private(set) var fieldbook: Fieldbook?
    private var kind: SiteKind?
    private var refused: [String: String] = [:]
    private var starting: Task<Void, Never>?
    private let dataDir: String
    private let language: Language
    let policy = SyncPolicy()

    init() {
        let support = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        let dir = support.appendingPathComponent("fieldbook", isDirectory: true)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        dataDir = dir.path
        language = Locale.preferredLanguages.first?.hasPrefix("zh") == true ? .zh : .en
    }

    /// Quick store calls (milliseconds) still stay off the main thread.
    private func core<T: Sendable>(_ call: @escaping @Sendable (Fieldbook) throws -> T) async -> T? {
        guard let fb = fieldbook else { return nil }
        do {
            return try await Task.detached { try call(fb) }.value
        } catch {
            message = UserMessage(error)
            return nil
        }
    }

    /// Opens the saved session offline, or shows the login screen. The UI
    /// and a background refresh may both ask; the store is opened once.
    func start() async {
        if starting == nil {
            starting = Task {
                let dir = dataDir, lang = language
                do {
                    let fb = try await Task.detached { try Fieldbook.resume(dataDir: dir, language: lang) }.value
                    await opened(fb)
                } catch ApiError.LoginRequired(_) {
                    let saved = try? savedUser(dataDir: dir)
                    screen = .login(server: saved?.server ?? "", user: saved?.user ?? "", userFixed: saved != nil)
                } catch {
                    screen = .login(server: "", user: "", userFixed: false)
                    message = UserMessage(error)
                }
            }
        }
        await starting?.value
    }

    func logIn(server: String, user: String, password: String) async -> Bool {
        do {
            let fb = try await login(dataDir: dataDir, server: server, username: user, password: password, language: language)
            await opened(fb)
            return true
        } catch {
            message = UserMessage(error)
            return false
        }
    }

    /// After a `LoginRequired`: the same user again; nothing is lost.
    func relogin(password: String) async -> Bool {
        guard let fb = fieldbook else { return false }
        do {
            try await fb.relogin(password: password)
            await refreshStatus()
            return true
        } catch {
            message = UserMessage(error)
            return false
        }
    }

    func logout() async {
        guard let fb = fieldbook else { return }
        do {
            try fb.logout()
            let a = fb.account()
            account = a
            screen = .login(server: a.server, user: a.user, userFixed: true)
        } catch {
            message = UserMessage(error)
        }
    }

    private func opened(_ fb: Fieldbook) async {
        fieldbook = fb
        account = fb.account()
        message = nil
        await showSites(nil)
        await refreshStatus()
    }

    private func refreshStatus() async {
        if let pending = await core({ try $0.pending() }) { sync.pending = pending }
        account = fieldbook?.account()
    }

    func showSites(_ kind: SiteKind?) async {
        guard let lists = await core({ fb in
            (try fb.listSites(area: nil, kind: kind, limit: 0, offset: 0),
             try fb.listInspections(siteId: nil, status: nil, limit: 50, offset: 0))
        }) else { return }
        self.kind = kind
        screen = .sites(kind: kind, sites: lists.0, recent: lists.1)
    }

    func backToSites() async { await showSites(kind) }

    /// Inspections a supervisor sent back, to fix first.
    func returned() async -> [InspectionItem] {
        await core { try $0.listInspections(siteId: nil, status: .returned, limit: 0, offset: 0) } ?? []
    }

    func startInspection(siteId: String) async {
        if let id = await core({ try $0.startInspection(siteId: siteId) }) { await open(id) }
    }

    func open(_ id: String) async {
        guard let loaded = await core({ fb -> (InspectionDetail, TemplateInfo) in
            let d = try fb.inspection(inspectionId: id)
            return (d, try fb.template(kind: d.siteKind))
        }) else { return }
        let (detail, template) = loaded
        if case let .inspection(old, _, _) = screen, old.id != id { refused = [:] }
        screen = .inspection(detail, template, FormState(template: template, detail: detail, refused: refused))
    }

    private var inspectionId: String? {
        if case let .inspection(detail, _, _) = screen { return detail.id }
        return nil
    }

    /// Saves what the user entered into field `key`; a refusal shows beside
    /// the field.
    func answer(_ key: String, _ text: String) async {
        guard case let .inspection(detail, template, _) = screen,
              let field = template.fields.first(where: { $0.key == key }) else { return }
        let id = detail.id
        let blank = text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        if blank && field.kind != .text {
            await store(key) { try $0.clearAnswer(inspectionId: id, key: key) }
        } else {
            switch Answers.parse(field, text) {
            case let .success(value): await store(key) { try $0.setAnswer(inspectionId: id, key: key, value: value) }
            case let .failure(e): refused[key] = e.message
            }
        }
        await open(id)
        await refreshStatus()
    }

    private func store(_ key: String, _ call: @escaping @Sendable (Fieldbook) throws -> Void) async {
        guard let fb = fieldbook else { return }
        do {
            try await Task.detached { try call(fb) }.value
            refused[key] = nil
        } catch {
            let m = UserMessage(error)
            refused[key] = m.fields[key] ?? m.text
            message = m
        }
    }

    func setLocation(_ fix: Location) async { await edit { try $0.setLocation(inspectionId: $1, fix: fix) } }
    func addNote(_ text: String) async { await edit { try $0.addNote(inspectionId: $1, text: text) } }
    func submit() async { await edit { try $0.submit(inspectionId: $1) } }

    private func edit(_ action: @escaping @Sendable (Fieldbook, String) throws -> Void) async {
        guard let id = inspectionId else { return }
        _ = await core { try action($0, id) }
        await open(id)
        await refreshStatus()
    }

    /// Compression runs in the core, off the main thread.
    func attachPhoto(_ jpeg: Data, field: String?) async {
        guard let fb = fieldbook, let id = inspectionId else { return }
        do {
            _ = try await fb.addPhoto(inspectionId: id, bytes: jpeg, field: field)
        } catch {
            message = UserMessage(error)
        }
        await open(id)
        await refreshStatus()
    }

    func findings() async -> [FindingItem] {
        await core { try $0.listFindings(siteId: nil, openOnly: true, limit: 0, offset: 0) } ?? []
    }

    func raiseFinding(_ input: NewFindingInput) async -> Bool {
        await core { try $0.raiseFinding(finding: input) } != nil
    }

    func attachFindingPhoto(_ jpeg: Data, findingId: String) async {
        guard let fb = fieldbook else { return }
        do {
            _ = try await fb.addFindingPhoto(findingId: findingId, bytes: jpeg)
        } catch {
            message = UserMessage(error)
        }
        await refreshStatus()
    }

    func syncDecision(_ conditions: SyncConditions) -> SyncDecision {
        guard let fb = fieldbook else { return .loginFirst }
        guard let pending = try? fb.pending() else {
            return .later(atMs: conditions.nowMs + policy.backoffBaseMs, why: "store busy")
        }
        return policy.decide(pending: pending, loginRequired: fb.account().loginRequired, history: sync.history, now: conditions)
    }

    /// Syncs when the policy says so; the foreground counterpart of the
    /// background refresh.
    func syncIfDue() async {
        if !sync.running, syncDecision(Conditions.current()) == .now { await syncNow() }
    }

    @discardableResult
    func syncNow(cancel: CancelToken? = nil) async -> SyncReport? {
        guard let fb = fieldbook, !sync.running else { return nil }
        sync.running = true
        sync.progress = nil
        let relay = ProgressRelay { p in Task { @MainActor in self.sync.progress = p } }
        defer { sync.running = false }
        do {
            let report = try await fb.sync(listener: relay, cancel: cancel)
            sync.last = report
            sync.history = sync.history.succeeded(atMs: nowMs())
            await refreshStatus()
            switch screen {
            case let .inspection(detail, _, _): await open(detail.id)
            case .sites: await showSites(kind)
            default: break
            }
            return report
        } catch {
            message = UserMessage(error)
            sync.history = sync.history.failed(atMs: nowMs())
            await refreshStatus()
            return nil
        }
    }
}
