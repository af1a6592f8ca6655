// Logging in. After a logout the user is fixed: the phone's store belongs
// to the user who last logged in on it.
import SwiftUI

struct LoginView: View {
    @EnvironmentObject var model: AppModel
    @State private var server: String
    @State private var user: String
    @State private var password = ""
    @State private var busy = false
    private let userFixed: Bool

    init(server: String, user: String, userFixed: Bool) {
        _server = State(initialValue: server)
        _user = State(initialValue: user)
        self.userFixed = userFixed
    }

    var body: some View {
        Form {
            Section {
                TextField("Server address", text: $server)
                    .keyboardType(.URL)
                    .textInputAutocapitalization(.never)
                    .autocorrectionDisabled()
                TextField("User name", text: $user)
                    .textInputAutocapitalization(.never)
                    .disabled(userFixed)
                SecureField("Password", text: $password)
            }
            if let m = model.message { Text(m.text).foregroundStyle(.red) }
            Button("Log in") {
                busy = true
                Task {
                    _ = await model.logIn(server: server.trimmed, user: user.trimmed, password: password)
                    busy = false
                }
            }
            .disabled(busy || server.trimmed.isEmpty || user.trimmed.isEmpty || password.isEmpty)
        }
        .navigationTitle("Fieldbook")
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
