// GPS fixes from Core Location, kept as they improve so the inspector sees
// the accuracy and decides when the fix is good enough to record.
import CoreLocation

@MainActor
final class LocationFix: NSObject, ObservableObject, CLLocationManagerDelegate {
    @Published private(set) var best: Location?
    @Published private(set) var denied = false
    private let manager = CLLocationManager()

    override init() {
        super.init()
        manager.delegate = self
        manager.desiredAccuracy = kCLLocationAccuracyBest
    }

    func start() {
        best = nil
        manager.requestWhenInUseAuthorization()
        manager.startUpdatingLocation()
    }

    func stop() { manager.stopUpdatingLocation() }

    nonisolated func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation]) {
        // A negative accuracy means the fix is invalid.
        guard let l = locations.last, l.horizontalAccuracy >= 0 else { return }
        let fix = Location(
            lat: l.coordinate.latitude,
            lon: l.coordinate.longitude,
            accuracyM: l.horizontalAccuracy,
            atMs: Int64(l.timestamp.timeIntervalSince1970 * 1000),
            mock: l.sourceInformation?.isSimulatedBySoftware ?? false
        )
        Task { @MainActor in
            if self.best.map({ fix.accuracyM <= $0.accuracyM }) ?? true { self.best = fix }
        }
    }

    nonisolated func locationManagerDidChangeAuthorization(_ manager: CLLocationManager) {
        let status = manager.authorizationStatus
        Task { @MainActor in self.denied = status == .denied || status == .restricted }
    }
}
