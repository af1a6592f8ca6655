// The app entry: one AppModel for the screens and the background refresh,
// and the root view that renders its screen state.
import SwiftUI

@main
struct FieldbookApp: App {
    @StateObject private var model: AppModel
    @Environment(\.scenePhase) private var phase

    init() {
        let model = AppModel()
        _model = StateObject(wrappedValue: model)
        BackgroundSync.register(model: model)
        _ = Conditions.current() // starts the network monitor early
    }

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .task { await model.start() }
        }
        .onChange(of: phase) { phase in
            switch phase {
            // Coming back into signal is the common case for a field phone.
            case .active: Task { await model.syncIfDue() }
            case .background: BackgroundSync.schedule(model.syncDecision(Conditions.current()), policy: model.policy)
            default: break
            }
        }
    }
}

struct RootView: View {
    @EnvironmentObject var model: AppModel
    @State private var relogin = false
    @State private var password = ""

    var body: some View {
        NavigationStack {
            switch model.screen {
            case .loading: ProgressView()
            case let .login(server, user, userFixed): LoginView(server: server, user: user, userFixed: userFixed)
            case let .sites(kind, sites, recent): SitesView(kind: kind, sites: sites, recent: recent, relogin: $relogin)
            case let .inspection(detail, _, form): ChecklistView(detail: detail, form: form)
            }
        }
        .alert(title(model.message), isPresented: showMessage, presenting: model.message) { m in
            if m.next == .logIn { Button("Log in") { relogin = true } }
            Button("OK", role: .cancel) {}
        } message: { m in
            Text(m.text)
        }
        .alert("Log in again", isPresented: $relogin) {
            SecureField("Password", text: $password)
            Button("Log in") { Task { _ = await model.relogin(password: password); password = "" } }
            Button("Cancel", role: .cancel) { password = "" }
        }
    }

    /// The login screen shows its refusals inline.
    private var showMessage: Binding<Bool> {
        Binding(
            get: {
                if case .login = model.screen { return false }
                return model.message != nil
            },
            set: { if !$0 { model.message = nil } }
        )
    }

    private func title(_ m: UserMessage?) -> String {
        switch m?.next {
        case .fixInput: return "Fix and try again"
        case .notAllowed: return "Not possible"
        case .logIn: return "Log in again"
        case .retryLater: return "Will retry later"
        case .freeSpace: return "Storage full"
        case .recover: return "Recover the data file"
        case .report, nil: return "Something went wrong"
        }
    }
}
