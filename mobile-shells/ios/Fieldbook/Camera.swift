// The camera for evidence photos. The camera is the only source: evidence
// must be taken on site, not picked from the photo library.
import SwiftUI
import UIKit

struct CameraPicker: UIViewControllerRepresentable {
    /// JPEG bytes, or nil when cancelled.
    let onDone: (Data?) -> Void

    static var available: Bool { UIImagePickerController.isSourceTypeAvailable(.camera) }

    func makeUIViewController(context: Context) -> UIImagePickerController {
        let picker = UIImagePickerController()
        picker.sourceType = .camera
        picker.delegate = context.coordinator
        return picker
    }

    func updateUIViewController(_ picker: UIImagePickerController, context: Context) {}

    func makeCoordinator() -> Coordinator { Coordinator(onDone: onDone) }

    final class Coordinator: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
        let onDone: (Data?) -> Void
        init(onDone: @escaping (Data?) -> Void) { self.onDone = onDone }

        func imagePickerController(
            _ picker: UIImagePickerController,
            didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]
        ) {
            // Near-full quality: the core does the one real compression, and
            // reads the orientation this JPEG carries.
            onDone((info[.originalImage] as? UIImage)?.jpegData(compressionQuality: 0.95))
        }

        func imagePickerControllerDidCancel(_ picker: UIImagePickerController) { onDone(nil) }
    }
}

/// Where a photo being taken will go.
struct PhotoTarget: Identifiable {
    var field: String? = nil
    var findingId: String? = nil
    var id: String { findingId ?? field ?? "" }
}
